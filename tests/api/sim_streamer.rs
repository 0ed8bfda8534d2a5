//! Black-box tests of the simulator's Account Streamer WebSocket: connect acks, errors before
//! connect, subscriptions, auth-token rules, heartbeat accounting, the idle window and pings,
//! and per-account notification routing.

use std::time::{Duration, Instant};

use crate::helpers::sim::{SimConfig, TestSim, assert_notification, sample_order, session_id};
use crate::helpers::ws::{
    Ws, expect_close, next_event, next_frame, next_json, next_text, send_json,
};
use crate::helpers::{FRAME_TIMEOUT, INDIVIDUAL, ROTH, now_ms, wait_until};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

fn ok(action: &str, sid: &str, request_id: u64) -> Value {
    json!({"status": "ok", "action": action, "web-socket-session-id": sid, "request-id": request_id})
}

fn error(action: &str, sid: &str, message: &str) -> Value {
    json!({"status": "error", "action": action, "web-socket-session-id": sid, "message": message})
}

fn error_with_id(action: &str, sid: &str, message: &str, request_id: u64) -> Value {
    let mut frame = error(action, sid, message);
    frame["request-id"] = json!(request_id);
    frame
}

/// Sends one action and returns the reply frame.
async fn call(ws: &mut Ws, message: Value) -> Value {
    send_json(ws, message).await;
    next_json(ws, FRAME_TIMEOUT).await
}

fn bye() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "Bye".into(),
    }))
}

#[tokio::test]
async fn connect_with_an_array_and_with_a_bare_string() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;

    let mut ws = sim.ws().await;
    let ack = call(
        &mut ws,
        json!({"action": "connect", "value": [INDIVIDUAL, ROTH], "auth-token": bearer, "request-id": 2, "source": "simtests/1.0"}),
    )
    .await;
    let sid = session_id(&ack);
    assert_eq!(
        ack,
        json!({"status": "ok", "action": "connect", "web-socket-session-id": sid, "value": [INDIVIDUAL, ROTH], "request-id": 2})
    );
    // The same socket keeps its session id.
    let hb = call(
        &mut ws,
        json!({"action": "heartbeat", "auth-token": bearer, "request-id": 3}),
    )
    .await;
    assert_eq!(hb, ok("heartbeat", &sid, 3));

    // The JS SDK sends a bare string for one account; the ack echoes an array.
    let mut single = sim.ws().await;
    let ack = call(
        &mut single,
        json!({"action": "connect", "value": INDIVIDUAL, "auth-token": bearer, "request-id": 7}),
    )
    .await;
    let other_sid = session_id(&ack);
    assert_eq!(
        ack,
        json!({"status": "ok", "action": "connect", "web-socket-session-id": other_sid, "value": [INDIVIDUAL], "request-id": 7})
    );
    assert_ne!(other_sid, sid, "every socket gets its own session id");

    // Without a request-id the ack has none.
    let mut anonymous = sim.ws().await;
    let ack = call(
        &mut anonymous,
        json!({"action": "connect", "value": [ROTH], "auth-token": bearer}),
    )
    .await;
    let sid3 = session_id(&ack);
    assert_eq!(
        ack,
        json!({"status": "ok", "action": "connect", "web-socket-session-id": sid3, "value": [ROTH]})
    );
    assert_eq!(sim.stat("streamer_connections").await, 3);
    assert_eq!(sim.stat("streamer_open").await, 3);
    drop((ws, single, anonymous));
    sim.shutdown().await;
}

#[tokio::test]
async fn actions_before_connect_are_refused() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let mut ws = sim.ws().await;

    // Heartbeat before connect: not-implemented, with the request-id (tastytrade-api-js#36).
    let reply = call(
        &mut ws,
        json!({"action": "heartbeat", "auth-token": bearer, "request-id": 4}),
    )
    .await;
    let sid = session_id(&reply);
    assert_eq!(
        reply,
        error_with_id("heartbeat", &sid, "not-implemented", 4)
    );

    // Subscriptions before connect: connect-not-completed, without the request-id.
    for (id, action, value) in [
        (5, "quote-alerts-subscribe", None),
        (6, "public-watchlists-subscribe", None),
        (7, "user-message-subscribe", Some("U0001234567")),
    ] {
        let mut message = json!({"action": action, "auth-token": bearer, "request-id": id});
        if let Some(value) = value {
            message["value"] = json!(value);
        }
        let reply = call(&mut ws, message).await;
        assert_eq!(reply, error(action, &sid, "connect-not-completed"));
    }

    // Then connect works on the same socket, and so does the heartbeat.
    let ack = call(
        &mut ws,
        json!({"action": "connect", "value": [INDIVIDUAL], "auth-token": bearer, "request-id": 8}),
    )
    .await;
    assert_eq!(
        ack,
        json!({"status": "ok", "action": "connect", "web-socket-session-id": sid, "value": [INDIVIDUAL], "request-id": 8})
    );
    let hb = call(
        &mut ws,
        json!({"action": "heartbeat", "auth-token": bearer, "request-id": 9}),
    )
    .await;
    assert_eq!(hb, ok("heartbeat", &sid, 9));
    assert_eq!(sim.stat("heartbeats").await, 1);
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn subscriptions_after_connect_are_acked() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, sid) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;

    let before = now_ms();
    let reply = call(
        &mut ws,
        json!({"action": "public-watchlists-subscribe", "auth-token": bearer, "request-id": 2}),
    )
    .await;
    assert_eq!(reply, ok("public-watchlists-subscribe", &sid, 2));
    let watchlists = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_notification(
        &watchlists,
        "PublicWatchlists",
        &json!({"name": "High Options Volume", "group-name": "tastytrade", "order-index": 3,
            "watchlist-entries": [{"symbol": "AAPL", "instrument-type": "Equity"}, {"symbol": "/ES", "instrument-type": "Future"}]}),
        before,
        now_ms(),
    );

    let reply = call(
        &mut ws,
        json!({"action": "quote-alerts-subscribe", "auth-token": bearer, "request-id": 3}),
    )
    .await;
    assert_eq!(reply, ok("quote-alerts-subscribe", &sid, 3));

    let reply = call(
        &mut ws,
        json!({"action": "user-message-subscribe", "value": "U0001234567", "auth-token": bearer, "request-id": 4}),
    )
    .await;
    assert_eq!(
        reply,
        json!({"status": "ok", "action": "user-message-subscribe", "web-socket-session-id": sid, "value": "U0001234567", "request-id": 4})
    );

    // The subscriptions deliver their channels' notifications.
    let alert = json!({"alert-external-id": "A-1", "user-external-id": "U0001234567", "symbol": "AAPL", "field": "Last", "operator": ">", "threshold": "240.00"});
    let before = now_ms();
    let (status, reply) = sim
        .control(
            "/sim/events",
            json!({"channel": "quote-alerts", "type": "QuoteAlert", "data": alert}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(reply, json!({"sent": 1}));
    let frame = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_notification(&frame, "QuoteAlert", &alert, before, now_ms());

    let (status, _) = sim
        .control(
            "/sim/events",
            json!({"channel": "user-messages", "raw": "{\"type\":\"UserMessage\",\"data\":{}}"}),
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(
        next_text(&mut ws, FRAME_TIMEOUT).await,
        "{\"type\":\"UserMessage\",\"data\":{}}"
    );
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_actions_and_account_subscribe_are_not_implemented() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let mut ws = sim.ws().await;

    // account-subscribe is the legacy alias of connect: not-implemented, before and after.
    let reply = call(
        &mut ws,
        json!({"action": "account-subscribe", "value": [INDIVIDUAL], "auth-token": bearer, "request-id": 1}),
    )
    .await;
    let sid = session_id(&reply);
    assert_eq!(
        reply,
        error_with_id("account-subscribe", &sid, "not-implemented", 1)
    );

    let reply = call(
        &mut ws,
        json!({"action": "connect", "value": [INDIVIDUAL], "auth-token": bearer, "request-id": 2}),
    )
    .await;
    assert_eq!(reply["status"], json!("ok"));

    let reply = call(
        &mut ws,
        json!({"action": "account-subscribe", "value": [ROTH], "auth-token": bearer, "request-id": 3}),
    )
    .await;
    assert_eq!(
        reply,
        error_with_id("account-subscribe", &sid, "not-implemented", 3)
    );

    let reply = call(
        &mut ws,
        json!({"action": "make-me-rich", "auth-token": bearer, "request-id": 4}),
    )
    .await;
    assert_eq!(
        reply,
        error_with_id("make-me-rich", &sid, "not-implemented", 4)
    );

    // Without a request-id there is none to echo.
    let reply = call(
        &mut ws,
        json!({"action": "make-me-rich", "auth-token": bearer}),
    )
    .await;
    assert_eq!(reply, error("make-me-rich", &sid, "not-implemented"));

    // A frame that is not a JSON object: not-implemented with an empty action.
    send_json(&mut ws, json!(["connect"])).await;
    let reply = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_eq!(reply, error("", &sid, "not-implemented"));
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn auth_token_forms_for_sessions_and_oauth() {
    let sim = TestSim::paused().await;
    let access = sim.access_token().await;
    let session = sim.session_token().await;

    // `Bearer <session token>` is refused with `failed`, without the request-id.
    for (id, auth) in [
        (11, format!("Bearer {session}")),
        (12, access.clone()),
        (13, "Bearer not-a-token".to_string()),
        (14, String::new()),
    ] {
        let mut ws = sim.ws().await;
        let reply = call(
            &mut ws,
            json!({"action": "connect", "value": [INDIVIDUAL], "auth-token": auth, "request-id": id}),
        )
        .await;
        let sid = session_id(&reply);
        assert_eq!(reply, error("connect", &sid, "failed"), "auth {auth:?}");
    }
    // No auth-token at all.
    let mut ws = sim.ws().await;
    let reply = call(&mut ws, json!({"action": "heartbeat", "request-id": 15})).await;
    let sid = session_id(&reply);
    assert_eq!(reply, error("heartbeat", &sid, "failed"));
    assert_eq!(sim.stat("failed_auth_messages").await, 5);
    assert_eq!(sim.stat("expired_token_messages").await, 0);

    // The raw session token works, and so does `Bearer <access token>`.
    let (_ws_session, _) = sim.connected_ws(&session, &[INDIVIDUAL]).await;
    let (_ws_oauth, _) = sim
        .connected_ws(&format!("Bearer {access}"), &[INDIVIDUAL, ROTH])
        .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_are_refused_and_counted() {
    let sim = TestSim::start(SimConfig {
        paused: true,
        token_ttl: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await;
    let bearer = sim.bearer().await;
    // Subscribe with a (24 h) session token so the short TTL cannot race the connect.
    let session = sim.session_token().await;
    let (mut ws, sid) = sim.connected_ws(&session, &[INDIVIDUAL]).await;
    assert_eq!(sim.stat("expired_token_messages").await, 0);

    // Wait (bounded) until REST says the token has expired.
    wait_until("the 1 s token expires", Duration::from_secs(5), || async {
        sim.get("/customers/me", &bearer).await.0 == 401
    })
    .await;
    let reply = call(
        &mut ws,
        json!({"action": "heartbeat", "auth-token": bearer, "request-id": 5}),
    )
    .await;
    assert_eq!(reply, error("heartbeat", &sid, "failed"));
    assert_eq!(sim.stat("expired_token_messages").await, 1);
    assert_eq!(sim.stat("failed_auth_messages").await, 1);

    // A fresh token on the same socket is accepted again.
    let fresh = sim.bearer().await;
    let reply = call(
        &mut ws,
        json!({"action": "heartbeat", "auth-token": fresh, "request-id": 6}),
    )
    .await;
    assert_eq!(reply, ok("heartbeat", &sid, 6));

    // The expire-tokens fault does the same to every token.
    let (status, _) = sim.control("/sim/faults/expire-tokens", json!({})).await;
    assert_eq!(status, 200);
    let reply = call(
        &mut ws,
        json!({"action": "heartbeat", "auth-token": fresh, "request-id": 7}),
    )
    .await;
    assert_eq!(reply, error("heartbeat", &sid, "failed"));
    assert_eq!(sim.stat("expired_token_messages").await, 2);
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn connect_to_an_account_not_owned_fails() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let mut ws = sim.ws().await;
    for (id, value) in [
        (1, json!(["5ZZ99999"])),
        (2, json!([INDIVIDUAL, "5ZZ99999"])),
        (3, json!("5ZZ99999")),
        (4, json!([])),
        (5, json!(42)),
    ] {
        let reply = call(
            &mut ws,
            json!({"action": "connect", "value": value, "auth-token": bearer, "request-id": id}),
        )
        .await;
        let sid = session_id(&reply);
        assert_eq!(reply, error("connect", &sid, "failed"), "value {value}");
    }
    // A failed connect does not count as connected.
    let reply = call(
        &mut ws,
        json!({"action": "quote-alerts-subscribe", "auth-token": bearer, "request-id": 6}),
    )
    .await;
    let sid = session_id(&reply);
    assert_eq!(
        reply,
        error("quote-alerts-subscribe", &sid, "connect-not-completed")
    );
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn heartbeats_closer_than_two_seconds_are_counted() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, sid) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    for id in 2..5 {
        let reply = call(
            &mut ws,
            json!({"action": "heartbeat", "auth-token": bearer, "request-id": id}),
        )
        .await;
        assert_eq!(reply, ok("heartbeat", &sid, id));
    }
    let stats = sim.stats().await;
    assert_eq!(stats["heartbeats"], json!(3));
    assert_eq!(stats["heartbeats_too_fast"], json!(2));
    // Heartbeats on another socket are timed separately.
    let (mut other, other_sid) = sim.connected_ws(&bearer, &[ROTH]).await;
    let reply = call(
        &mut other,
        json!({"action": "heartbeat", "auth-token": bearer, "request-id": 9}),
    )
    .await;
    assert_eq!(reply, ok("heartbeat", &other_sid, 9));
    let stats = sim.stats().await;
    assert_eq!(stats["heartbeats"], json!(4));
    assert_eq!(stats["heartbeats_too_fast"], json!(2));
    drop((ws, other));
    sim.shutdown().await;
}

#[tokio::test]
async fn idle_socket_is_closed_with_bye_after_the_window() {
    let window = Duration::from_secs(1);
    let sim = TestSim::start(SimConfig {
        paused: true,
        heartbeat_window: window,
        ..SimConfig::default()
    })
    .await;
    let bearer = sim.bearer().await;
    let (mut ws, _) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let last_sent = Instant::now();

    let (close, before) = expect_close(&mut ws, Duration::from_secs(5)).await;
    let waited = last_sent.elapsed();
    assert_eq!(close, bye());
    assert!(before.is_empty(), "nothing before the close: {before:?}");
    assert!(
        waited >= window,
        "closed after {waited:?}, window {window:?}"
    );
    assert!(
        waited < window + Duration::from_secs(3),
        "closed after {waited:?}"
    );
    assert_eq!(sim.stat("idle_closes").await, 1);
    // Reading on lets the client answer the close; the server then ends the socket.
    assert!(
        matches!(
            next_event(&mut ws, FRAME_TIMEOUT).await,
            None | Some(Err(tungstenite::Error::ConnectionClosed))
        ),
        "nothing after the close"
    );
    wait_until("the socket is gone", Duration::from_secs(5), || async {
        sim.stat("streamer_open").await == 0
    })
    .await;

    // A socket that never sends anything is closed too.
    let mut silent = sim.ws().await;
    let (close, _) = expect_close(&mut silent, Duration::from_secs(5)).await;
    assert_eq!(close, bye());
    assert_eq!(sim.stat("idle_closes").await, 2);
    sim.shutdown().await;
}

/// Pings the socket every 250 ms for `duration`, waiting for each pong. Returns `None` if
/// every ping was answered, else the frame that came instead of a pong (e.g. the close).
async fn ping_for(ws: &mut Ws, duration: Duration) -> Option<Message> {
    let until = Instant::now() + duration;
    let mut n = 0u8;
    while Instant::now() < until {
        n = n.wrapping_add(1);
        if futures::SinkExt::send(ws, Message::Ping(vec![n].into()))
            .await
            .is_err()
        {
            return Some(Message::Close(None));
        }
        match next_frame(ws, FRAME_TIMEOUT).await {
            Message::Pong(payload) => assert_eq!(&payload[..], &[n]),
            other => return Some(other),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

#[tokio::test]
async fn pings_count_as_heartbeats_when_configured() {
    let window = Duration::from_millis(1500);
    let sim = TestSim::start(SimConfig {
        paused: true,
        heartbeat_window: window,
        pings_count_as_heartbeat: true,
        ..SimConfig::default()
    })
    .await;
    let bearer = sim.bearer().await;
    let (mut ws, sid) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    // Pinging for more than twice the window keeps the socket open.
    assert_eq!(ping_for(&mut ws, window * 2 + window / 2).await, None);
    let reply = call(
        &mut ws,
        json!({"action": "heartbeat", "auth-token": bearer, "request-id": 2}),
    )
    .await;
    assert_eq!(reply, ok("heartbeat", &sid, 2));
    assert_eq!(sim.stat("idle_closes").await, 0);
    // Once the pings stop, the window applies.
    let (close, _) = expect_close(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(close, bye());
    assert_eq!(sim.stat("idle_closes").await, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn pings_do_not_count_when_not_configured() {
    let window = Duration::from_secs(1);
    let sim = TestSim::start(SimConfig {
        paused: true,
        heartbeat_window: window,
        pings_count_as_heartbeat: false,
        ..SimConfig::default()
    })
    .await;
    let bearer = sim.bearer().await;
    let (mut ws, _) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let started = Instant::now();
    // The pings are still answered, but the socket is closed within the window regardless.
    let close = ping_for(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(close, Some(bye()));
    assert!(started.elapsed() < window + Duration::from_secs(3));
    assert_eq!(sim.stat("idle_closes").await, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn notifications_arrive_only_for_connected_accounts() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut individual, _) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let (mut both, _) = sim.connected_ws(&bearer, &[INDIVIDUAL, ROTH]).await;
    // A socket that never connected gets nothing.
    let mut unconnected = sim.ws().await;

    let roth_order = sample_order(ROTH, 777_001, "Live");
    let individual_order = sample_order(INDIVIDUAL, 777_002, "Live");
    let before = now_ms();
    sim.inject(ROTH, json!({"type": "Order", "data": roth_order}))
        .await;
    sim.inject(
        INDIVIDUAL,
        json!({"type": "Order", "data": individual_order}),
    )
    .await;
    let after = now_ms();

    // Frames reach each socket in publication order, so the Roth order would come first.
    let frame = next_json(&mut individual, FRAME_TIMEOUT).await;
    assert_notification(&frame, "Order", &individual_order, before, after);

    let frame = next_json(&mut both, FRAME_TIMEOUT).await;
    assert_notification(&frame, "Order", &roth_order, before, after);
    let frame = next_json(&mut both, FRAME_TIMEOUT).await;
    assert_notification(&frame, "Order", &individual_order, before, after);

    // Let the unconnected socket prove it is alive: it answers, and it had nothing queued.
    let reply = call(
        &mut unconnected,
        json!({"action": "connect", "value": [ROTH], "auth-token": bearer, "request-id": 3}),
    )
    .await;
    assert_eq!(reply["status"], json!("ok"));
    let third = sample_order(ROTH, 777_003, "Routed");
    sim.inject(ROTH, json!({"type": "Order", "data": third}))
        .await;
    let frame = next_json(&mut unconnected, FRAME_TIMEOUT).await;
    assert_eq!(frame["data"], third);
    // Five deliveries in all: 1 to `individual` and 2 to `both` before, then 1 each to `both`
    // and the late-connected socket.
    wait_until(
        "notifications_sent reaches 5",
        Duration::from_secs(5),
        || async { sim.stat("notifications_sent").await == 5 },
    )
    .await;
    drop((individual, both, unconnected));
    sim.shutdown().await;
}
