//! Black-box tests of the simulator's control API and faults: event injection (single, batch,
//! raw) and the truth it updates, every socket and REST fault, and the market script (fill
//! sequence, pausing, and the REST baseline matching the truth).

use std::time::{Duration, Instant};

use crate::helpers::sim::{SimConfig, TestSim, assert_notification, paused_config, sample_order};
use crate::helpers::ws::{
    Ws, assert_quiet, expect_close, next_event, next_json, next_text, send_json,
};
use crate::helpers::{FRAME_TIMEOUT, INDIVIDUAL, ROTH, now_ms, wait_until};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, error::ProtocolError};

fn simulated_fault() -> Value {
    json!({"error": {"code": "simulated_fault", "message": "Simulated failure, try again"}})
}

async fn heartbeat(ws: &mut Ws, auth: &str, id: u64) -> Value {
    send_json(
        ws,
        json!({"action": "heartbeat", "auth-token": auth, "request-id": id}),
    )
    .await;
    next_json(ws, FRAME_TIMEOUT).await
}

#[tokio::test]
async fn injected_order_reaches_the_socket_and_the_truth() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, _) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;

    let order = sample_order(INDIVIDUAL, 880_001, "Live");
    let before = now_ms();
    let reply = sim
        .inject(INDIVIDUAL, json!({"type": "Order", "data": order}))
        .await;
    let after = now_ms();
    assert_eq!(reply, json!({"sent": 1, "batch": false}));
    let frame = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_notification(&frame, "Order", &order, before, after);

    let truth = sim.truth(INDIVIDUAL).await;
    assert_eq!(truth["account-number"], json!(INDIVIDUAL));
    let orders = truth["orders"].as_array().expect("orders");
    assert_eq!(orders.len(), 3);
    assert_eq!(orders[2], order);
    // REST serves the truth.
    let one = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/orders/880001"), &bearer)
        .await;
    assert_eq!(one["data"], order);

    // A newer full object replaces the old one under the same id.
    let mut filled = order.clone();
    filled["status"] = json!("Filled");
    filled["legs"][0]["remaining-quantity"] = json!(0);
    let reply = sim
        .inject(INDIVIDUAL, json!({"type": "Order", "data": filled}))
        .await;
    assert_eq!(reply, json!({"sent": 1, "batch": false}));
    let frame = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_eq!(frame["data"], filled);
    let truth = sim.truth(INDIVIDUAL).await;
    assert_eq!(truth["orders"].as_array().map(Vec::len), Some(3));
    assert_eq!(truth["orders"][2], filled);

    // `account-number` defaults to the account's.
    let mut anonymous = sample_order(INDIVIDUAL, 880_002, "Received");
    anonymous
        .as_object_mut()
        .expect("object")
        .remove("account-number");
    sim.inject(INDIVIDUAL, json!({"type": "Order", "data": anonymous}))
        .await;
    let frame = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_eq!(frame["data"], sample_order(INDIVIDUAL, 880_002, "Received"));

    // Unknown accounts and malformed bodies are refused.
    let (status, reply) = sim
        .control(
            "/sim/accounts/5ZZ99999/events",
            json!({"type": "Order", "data": order}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply,
        json!({"error": {"code": "not_found", "message": "no such account"}})
    );
    let (status, reply) = sim
        .control(
            &format!("/sim/accounts/{INDIVIDUAL}/events"),
            json!({"data": order}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply,
        json!({"error": {"code": "bad_request", "message": "an event needs a string \"type\""}})
    );
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn zero_position_removes_it_from_the_truth() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, _) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let truth = sim.truth(INDIVIDUAL).await;
    let positions = truth["positions"].as_array().expect("positions").clone();
    assert_eq!(positions.len(), 5);
    assert_eq!(positions[1]["symbol"], json!("AAPL"));

    let mut closed = positions[1].clone();
    closed["quantity"] = json!("0");
    closed["quantity-direction"] = json!("Zero");
    closed["realized-day-gain"] = json!("125.4");
    closed["realized-day-gain-effect"] = json!("Credit");
    let before = now_ms();
    sim.inject(
        INDIVIDUAL,
        json!({"type": "CurrentPosition", "data": closed}),
    )
    .await;
    let frame = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_notification(&frame, "CurrentPosition", &closed, before, now_ms());

    let expected: Vec<Value> = positions
        .iter()
        .filter(|p| p["symbol"] != json!("AAPL"))
        .cloned()
        .collect();
    let truth = sim.truth(INDIVIDUAL).await;
    assert_eq!(truth["positions"], json!(expected));
    let rest = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/positions"), &bearer)
        .await;
    assert_eq!(rest["data"]["items"], json!(expected));

    // A changed position is replaced in place, keyed by symbol and instrument type.
    let mut bigger = positions[0].clone();
    bigger["quantity"] = json!("120.29");
    sim.inject(
        INDIVIDUAL,
        json!({"type": "CurrentPosition", "data": bigger}),
    )
    .await;
    next_json(&mut ws, FRAME_TIMEOUT).await;
    let truth = sim.truth(INDIVIDUAL).await;
    assert_eq!(truth["positions"].as_array().map(Vec::len), Some(4));
    assert_eq!(truth["positions"][0], bigger);
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn batch_and_raw_injections() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, _) = sim.connected_ws(&bearer, &[ROTH]).await;

    let order = sample_order(ROTH, 880_101, "Filled");
    let truth = sim.truth(ROTH).await;
    let mut balance = truth["balance"].clone();
    balance["cash-balance"] = json!("17019.9");
    let before = now_ms();
    let reply = sim
        .inject(
            ROTH,
            json!({"events": [{"type": "Order", "data": order}, {"type": "AccountBalance", "data": balance}], "batch": true}),
        )
        .await;
    let after = now_ms();
    assert_eq!(reply, json!({"sent": 2, "batch": true}));
    let frame = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_eq!(frame.as_object().map(|o| o.len()), Some(1), "{frame}");
    let results = frame["results"].as_array().expect("results array");
    assert_eq!(results.len(), 2);
    assert_notification(&results[0], "Order", &order, before, after);
    assert_notification(&results[1], "AccountBalance", &balance, before, after);
    let truth = sim.truth(ROTH).await;
    assert_eq!(truth["balance"], balance);
    assert_eq!(truth["orders"][1], order);

    // Without `batch`, the events go as separate frames, in order.
    let second = sample_order(ROTH, 880_102, "Live");
    let third = sample_order(ROTH, 880_103, "Live");
    let reply = sim
        .inject(
            ROTH,
            json!({"events": [{"type": "Order", "data": second}, {"type": "Order", "data": third}]}),
        )
        .await;
    assert_eq!(reply, json!({"sent": 2, "batch": false}));
    assert_eq!(next_json(&mut ws, FRAME_TIMEOUT).await["data"], second);
    assert_eq!(next_json(&mut ws, FRAME_TIMEOUT).await["data"], third);

    // A raw frame goes out exactly as given, and does not touch the truth.
    let raw = "{\"type\":\"Mystery\",\"data\":{\"x\":1}, \"timestamp\":1}";
    let before_truth = sim.truth(ROTH).await;
    let reply = sim.inject(ROTH, json!({"raw": raw})).await;
    assert_eq!(reply, json!({"sent": "raw"}));
    assert_eq!(next_text(&mut ws, FRAME_TIMEOUT).await, raw);
    assert_eq!(sim.truth(ROTH).await, before_truth);

    // Unknown types are delivered but are not part of the truth.
    let chain = json!({"id": "145048656", "account-number": ROTH, "description": "Calendar"});
    sim.inject(ROTH, json!({"type": "OrderChain", "data": chain}))
        .await;
    assert_eq!(next_json(&mut ws, FRAME_TIMEOUT).await["data"], chain);
    assert_eq!(sim.truth(ROTH).await, before_truth);
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_fault_ends_the_connection_without_a_close_frame() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, _) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let (status, reply) = sim.control("/sim/faults/drop", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"armed": "drop"}));

    match next_event(&mut ws, FRAME_TIMEOUT).await {
        Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {}
        Some(Err(WsError::Io(error))) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to end without a close frame, got {other:?}"),
    }
    wait_until("the socket is gone", Duration::from_secs(5), || async {
        sim.stat("streamer_open").await == 0
    })
    .await;
    sim.shutdown().await;
}

#[tokio::test]
async fn socket_faults_can_target_one_account() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut individual, _) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let (mut roth, roth_sid) = sim.connected_ws(&bearer, &[ROTH]).await;

    let (status, _) = sim
        .control("/sim/faults/close", json!({"account": INDIVIDUAL}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (close, before) = expect_close(&mut individual, FRAME_TIMEOUT).await;
    assert!(before.is_empty());
    assert_eq!(
        close,
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "Bye".into()
        }))
    );
    // The Roth socket was not targeted: it still answers.
    assert_eq!(
        heartbeat(&mut roth, &bearer, 2).await,
        json!({"status": "ok", "action": "heartbeat", "web-socket-session-id": roth_sid, "request-id": 2})
    );

    let (status, reply) = sim
        .control("/sim/faults/close", json!({"account": "5ZZ99999"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply,
        json!({"error": {"code": "bad_request", "message": "\"account\" must be one of the simulator's account numbers"}})
    );
    let (status, reply) = sim.control("/sim/faults/explode", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        reply,
        json!({"error": {"code": "not_found", "message": "unknown fault; see GET /sim/"}})
    );
    drop(roth);
    sim.shutdown().await;
}

#[tokio::test]
async fn close_fault_sends_1000_bye() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, _) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let (status, reply) = sim.control("/sim/faults/close", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"armed": "close"}));
    let (close, before) = expect_close(&mut ws, FRAME_TIMEOUT).await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(
        close,
        Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "Bye".into()
        }))
    );
    // The client answered the close; the socket then ends cleanly.
    match next_event(&mut ws, FRAME_TIMEOUT).await {
        None | Some(Err(WsError::ConnectionClosed)) => {}
        other => panic!("expected a clean end after the close, got {other:?}"),
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn silent_fault_keeps_acks_and_drops_notifications() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, sid) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;

    let (status, reply) = sim.control("/sim/faults/silent", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"armed": "silent", "enabled": true}));
    let response = sim
        .http
        .get(sim.url("/sim/faults"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"silent": true, "rest": {"errors_remaining": 0, "error_status": 0, "retry_after_secs": 0, "latency_ms": 0}})
    );

    // Acks still flow.
    assert_eq!(
        heartbeat(&mut ws, &bearer, 2).await,
        json!({"status": "ok", "action": "heartbeat", "web-socket-session-id": sid, "request-id": 2})
    );
    // The notification is swallowed, though the truth changes. The malformed fault that
    // follows it on the same ordered hub proves the socket has already passed it by.
    let hidden = sample_order(INDIVIDUAL, 880_201, "Live");
    sim.inject(INDIVIDUAL, json!({"type": "Order", "data": hidden}))
        .await;
    let (status, _) = sim.control("/sim/faults/malformed", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let text = next_text(&mut ws, FRAME_TIMEOUT).await;
    assert_eq!(text, r#"{"type":"Order","data":{"id":27,"account-number":"#);
    assert_eq!(sim.truth(INDIVIDUAL).await["orders"][2], hidden);
    assert_eq!(sim.stat("notifications_sent").await, 0);

    sim.clear_faults().await;
    let shown = sample_order(INDIVIDUAL, 880_202, "Live");
    let before = now_ms();
    sim.inject(INDIVIDUAL, json!({"type": "Order", "data": shown}))
        .await;
    let frame = next_json(&mut ws, FRAME_TIMEOUT).await;
    assert_notification(&frame, "Order", &shown, before, now_ms());
    wait_until("notifications_sent is 1", FRAME_TIMEOUT, || async {
        sim.stat("notifications_sent").await == 1
    })
    .await;
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn malformed_fault_sends_invalid_json_and_the_socket_lives_on() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, sid) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let (status, reply) = sim.control("/sim/faults/malformed", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"armed": "malformed"}));
    let text = next_text(&mut ws, FRAME_TIMEOUT).await;
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
    assert_eq!(text, r#"{"type":"Order","data":{"id":27,"account-number":"#);
    assert_eq!(
        heartbeat(&mut ws, &bearer, 2).await,
        json!({"status": "ok", "action": "heartbeat", "web-socket-session-id": sid, "request-id": 2})
    );
    drop(ws);
    sim.shutdown().await;
}

/// Checks an oversized frame: one valid `OrderChain` notification over 1 MiB for `account`.
fn check_oversized(text: &str, account: &str, at_least: usize) {
    assert!(
        text.len() > 1 << 20,
        "frame of {} bytes is over 1 MiB",
        text.len()
    );
    assert!(text.len() >= at_least, "frame of {} bytes", text.len());
    let frame: Value = serde_json::from_str(text).expect("the oversized frame is valid JSON");
    assert_eq!(frame["type"], json!("OrderChain"));
    assert!(frame["timestamp"].is_i64());
    assert_eq!(frame["data"]["account-number"], json!(account));
    let nodes = frame["data"]["lite-nodes"].as_array().expect("lite-nodes");
    assert_eq!(frame["data"]["lite-nodes-sizes"], json!(nodes.len()));
    assert_eq!(
        nodes.last().expect("nodes")["id"],
        json!(format!("node-{}", nodes.len() - 1))
    );
}

#[tokio::test]
async fn oversized_fault_whole_and_fragmented() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, sid) = sim.connected_ws(&bearer, &[ROTH]).await;

    let (status, reply) = sim.control("/sim/faults/oversized", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"armed": "oversized"}));
    let text = next_text(&mut ws, FRAME_TIMEOUT).await;
    check_oversized(&text, ROTH, 1_200_000);

    let (status, _) = sim
        .control(
            "/sim/faults/oversized",
            json!({"bytes": 2_000_000, "fragmented": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = next_text(&mut ws, FRAME_TIMEOUT).await;
    check_oversized(&text, ROTH, 2_000_000);

    // The socket is still usable after both.
    assert_eq!(
        heartbeat(&mut ws, &bearer, 2).await,
        json!({"status": "ok", "action": "heartbeat", "web-socket-session-id": sid, "request-id": 2})
    );
    wait_until("notifications_sent is 2", FRAME_TIMEOUT, || async {
        sim.stat("notifications_sent").await == 2
    })
    .await;

    let (status, reply) = sim
        .control("/sim/faults/oversized", json!({"bytes": 0}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply,
        json!({"error": {"code": "bad_request", "message": "\"bytes\" must be from 1 to 15728640"}})
    );
    drop(ws);
    sim.shutdown().await;
}

#[tokio::test]
async fn expire_tokens_fault_hits_rest_and_streamer() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, sid) = sim.connected_ws(&bearer, &[INDIVIDUAL]).await;
    let (status, reply) = sim.control("/sim/faults/expire-tokens", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"armed": "expire-tokens"}));

    let (status, body) = sim.get("/customers/me/accounts", &bearer).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": {"code": "token_invalid", "message": "This token is invalid or has expired"}})
    );
    assert_eq!(
        heartbeat(&mut ws, &bearer, 2).await,
        json!({"status": "error", "action": "heartbeat", "web-socket-session-id": sid, "message": "failed"})
    );
    assert_eq!(sim.stat("expired_token_messages").await, 1);
    // The subscription survives: notifications still arrive on the socket.
    let order = sample_order(INDIVIDUAL, 880_301, "Live");
    sim.inject(INDIVIDUAL, json!({"type": "Order", "data": order}))
        .await;
    assert_eq!(next_json(&mut ws, FRAME_TIMEOUT).await["data"], order);
    drop(ws);
    sim.shutdown().await;
}

async fn accounts_call(sim: &TestSim, bearer: &str) -> reqwest::Response {
    sim.http
        .get(sim.url("/customers/me/accounts"))
        .header("Authorization", bearer)
        .send()
        .await
        .expect("GET")
}

#[tokio::test]
async fn rest_errors_fail_exactly_n_calls() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;

    let (status, reply) = sim
        .control(
            "/sim/faults/rest-errors",
            json!({"count": 2, "status": 500}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        reply,
        json!({"armed": "rest-errors", "rest": {"errors_remaining": 2, "error_status": 500, "retry_after_secs": 1, "latency_ms": 0}})
    );
    for _ in 0..2 {
        let response = accounts_call(&sim, &bearer).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get("retry-after").is_none());
        assert_eq!(response.json::<Value>().await.unwrap(), simulated_fault());
    }
    let response = accounts_call(&sim, &bearer).await;
    assert_eq!(response.status(), StatusCode::OK);

    let (status, _) = sim
        .control(
            "/sim/faults/rest-errors",
            json!({"count": 3, "status": 429, "retry_after_secs": 7}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..3 {
        let response = accounts_call(&sim, &bearer).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("7")
        );
        assert_eq!(response.json::<Value>().await.unwrap(), simulated_fault());
    }
    let response = accounts_call(&sim, &bearer).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("retry-after").is_none());

    // Errors are served before the User-Agent and token checks; DELETE disarms them.
    sim.control(
        "/sim/faults/rest-errors",
        json!({"count": 5, "status": 503}),
    )
    .await;
    let response = sim
        .http_no_agent
        .get(sim.url("/customers/me"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    sim.clear_faults().await;
    assert_eq!(accounts_call(&sim, &bearer).await.status(), StatusCode::OK);

    let (status, reply) = sim
        .control("/sim/faults/rest-errors", json!({"status": 200}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        reply,
        json!({"error": {"code": "bad_request", "message": "\"status\" must be an HTTP error status (400-599)"}})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_fault_delays_rest_calls() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let latency = Duration::from_millis(400);

    let (status, reply) = sim.control("/sim/faults/latency", json!({"ms": 400})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"armed": "latency", "ms": 400}));
    for _ in 0..2 {
        let started = Instant::now();
        let response = accounts_call(&sim, &bearer).await;
        let took = started.elapsed();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(took >= latency, "took {took:?}");
        assert!(took < latency + Duration::from_secs(4), "took {took:?}");
    }

    sim.clear_faults().await;
    let response = sim
        .http
        .get(sim.url("/sim/faults"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"silent": false, "rest": {"errors_remaining": 0, "error_status": 0, "retry_after_secs": 0, "latency_ms": 0}})
    );
    let started = Instant::now();
    assert_eq!(accounts_call(&sim, &bearer).await.status(), StatusCode::OK);
    assert!(started.elapsed() < latency, "no latency after clearing");

    let (status, _) = sim
        .control("/sim/faults/latency", json!({"ms": 60_001}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sim.shutdown().await;
}

/// Notifications in one frame: a `results` batch is unwrapped, a single frame is itself.
fn unwrap_frame(frame: &Value) -> Vec<Value> {
    match frame.get("results") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![frame.clone()],
    }
}

#[tokio::test]
async fn market_script_emits_fills_in_order_and_pauses() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let (mut ws, sid) = sim.connected_ws(&bearer, &[INDIVIDUAL, ROTH]).await;

    let response = sim
        .http
        .get(sim.url("/sim/script"))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"paused": true, "rate": 2.0})
    );
    let (status, reply) = sim
        .control("/sim/script", json!({"paused": false, "rate": 50}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"paused": false, "rate": 50.0}));

    // Read frames until a fill shows up: an `Order`, then `CurrentPosition`, then
    // `AccountBalance`, as three consecutive frames or as one results batch.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut events: Vec<Value> = Vec::new();
    let mut saw_order = false;
    let fill_at = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = next_json(&mut ws, left).await;
        assert!(frame.get("status").is_none(), "no acks expected: {frame}");
        for event in unwrap_frame(&frame) {
            let kind = event["type"].as_str().expect("type").to_string();
            assert!(event["timestamp"].is_i64(), "{event}");
            let account = event["data"]["account-number"].clone();
            if kind != "QuoteAlert" && kind != "PublicWatchlists" {
                assert!(
                    account == json!(INDIVIDUAL) || account == json!(ROTH),
                    "{event}"
                );
            }
            saw_order |= kind == "Order";
            events.push(event);
        }
        let position = events
            .iter()
            .rposition(|e| e["type"] == json!("CurrentPosition"));
        if let Some(index) = position
            && index + 1 < events.len()
        {
            break index;
        }
    };
    assert!(saw_order);
    assert!(fill_at > 0, "a CurrentPosition came first: {}", events[0]);
    let order = &events[fill_at - 1];
    let position = &events[fill_at];
    let balance = &events[fill_at + 1];
    assert_eq!(order["type"], json!("Order"), "{order}");
    assert_eq!(balance["type"], json!("AccountBalance"), "{balance}");
    let account = &order["data"]["account-number"];
    assert_eq!(&position["data"]["account-number"], account);
    assert_eq!(&balance["data"]["account-number"], account);
    assert_eq!(
        position["data"]["symbol"], order["data"]["legs"][0]["symbol"],
        "the position is the filled instrument"
    );
    let fills = order["data"]["legs"][0]["fills"].as_array().expect("fills");
    assert!(!fills.is_empty(), "the order carries its fill: {order}");
    assert!(matches!(
        order["data"]["status"].as_str(),
        Some("Filled" | "Live")
    ));

    // Pause: after any step already under way, the socket goes quiet.
    let (status, reply) = sim.control("/sim/script", json!({"paused": true})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"paused": true, "rate": 50.0}));
    let drain_deadline = Instant::now() + Duration::from_secs(5);
    while tokio::time::timeout(Duration::from_millis(300), ws.next())
        .await
        .is_ok()
    {
        assert!(Instant::now() < drain_deadline, "the script did not pause");
    }
    // 500 ms is 25 steps at 50 steps/s: nothing may arrive.
    assert_quiet(&mut ws, Duration::from_millis(500)).await;
    assert_eq!(
        heartbeat(&mut ws, &bearer, 2).await,
        json!({"status": "ok", "action": "heartbeat", "web-socket-session-id": sid, "request-id": 2})
    );
    drop(ws);
    sim.shutdown().await;
}

/// Every page of `/orders/live`, concatenated.
async fn all_live_orders(sim: &TestSim, bearer: &str, account: &str) -> Vec<Value> {
    let mut orders = Vec::new();
    let mut page = 0;
    loop {
        let body = sim
            .get_ok(
                &format!("/accounts/{account}/orders/live?per-page=7&page-offset={page}"),
                bearer,
            )
            .await;
        let pagination = &body["pagination"];
        assert_eq!(pagination["page-offset"], json!(page));
        assert_eq!(pagination["per-page"], json!(7));
        assert_eq!(pagination["item-offset"], json!(page * 7));
        let items = body["data"]["items"].as_array().expect("items");
        assert_eq!(pagination["current-item-count"], json!(items.len()));
        orders.extend(items.iter().cloned());
        let total_pages = pagination["total-pages"].as_u64().expect("total-pages");
        page += 1;
        if page >= total_pages {
            assert_eq!(pagination["total-items"], json!(orders.len()));
            return orders;
        }
    }
}

/// The REST baseline of one account in the truth's shape.
async fn rest_baseline(sim: &TestSim, bearer: &str, account: &str) -> Value {
    let balance = sim
        .get_ok(&format!("/accounts/{account}/balances"), bearer)
        .await;
    let positions = sim
        .get_ok(&format!("/accounts/{account}/positions"), bearer)
        .await;
    let complex = sim
        .get_ok(&format!("/accounts/{account}/complex-orders/live"), bearer)
        .await;
    let status = sim
        .get_ok(&format!("/accounts/{account}/trading-status"), bearer)
        .await;
    json!({
        "account-number": account,
        "balance": balance["data"],
        "positions": positions["data"]["items"],
        "orders": all_live_orders(sim, bearer, account).await,
        "complex-orders": complex["data"]["items"],
        "trading-status": status["data"],
    })
}

#[tokio::test]
async fn rest_baseline_equals_truth_after_the_script_ran() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let initial = sim.truth(INDIVIDUAL).await;

    let (status, _) = sim
        .control("/sim/script", json!({"paused": false, "rate": 400}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Run until both accounts have many more orders than they started with.
    wait_until(
        "the script places at least 20 orders per account",
        Duration::from_secs(20),
        || async {
            let a = sim.truth(INDIVIDUAL).await["orders"]
                .as_array()
                .map_or(0, Vec::len);
            let b = sim.truth(ROTH).await["orders"]
                .as_array()
                .map_or(0, Vec::len);
            a >= 22 && b >= 21
        },
    )
    .await;
    let (status, _) = sim.control("/sim/script", json!({"paused": true})).await;
    assert_eq!(status, StatusCode::OK);

    for account in [INDIVIDUAL, ROTH] {
        // A step already under way when the pause landed may still change the truth; compare
        // against a truth that did not change around the REST reads.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let before = sim.truth(account).await;
            let rest = rest_baseline(&sim, &bearer, account).await;
            let after = sim.truth(account).await;
            if before == after {
                assert_eq!(rest, after, "REST baseline of {account} equals its truth");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the truth of {account} kept changing"
            );
        }
    }
    let truth = sim.truth(INDIVIDUAL).await;
    assert_ne!(truth, initial, "the script changed the truth");
    sim.shutdown().await;
}

/// Runs the market script fast on a connected socket until it has sent at least `orders`
/// `Order` and `complex` `ComplexOrder` notifications; returns every notification it sent.
async fn script_notifications(sim: &TestSim, orders: usize, complex: usize) -> Vec<Value> {
    let bearer = sim.bearer().await;
    let (mut ws, _) = sim.connected_ws(&bearer, &[INDIVIDUAL, ROTH]).await;
    let (status, _) = sim
        .control("/sim/script", json!({"paused": false, "rate": 200}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    let count =
        |events: &[Value], kind: &str| events.iter().filter(|e| e["type"] == json!(kind)).count();
    while count(&events, "Order") < orders || count(&events, "ComplexOrder") < complex {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the script sent too few orders in 30 s");
        events.extend(unwrap_frame(&next_json(&mut ws, left).await));
    }
    let (status, _) = sim.control("/sim/script", json!({"paused": true})).await;
    assert_eq!(status, StatusCode::OK);
    events
}

/// tastyware parses `user-id` and the values of `related-orders` entries as strings and stops
/// its streamer on anything else (shared/protocol §8): the script writes strings by default.
#[tokio::test]
async fn market_script_writes_user_ids_and_related_orders_as_strings() {
    let sim = TestSim::paused().await;
    let events = script_notifications(&sim, 60, 2).await;
    for event in &events {
        let data = &event["data"];
        match event["type"].as_str() {
            Some("Order") => assert!(data["user-id"].is_string(), "{event}"),
            Some("ComplexOrder") => {
                for child in data["orders"].as_array().expect("orders") {
                    assert!(child["user-id"].is_string(), "{event}");
                }
                let related = data["related-orders"].as_array().expect("related-orders");
                assert!(!related.is_empty(), "{event}");
                for entry in related {
                    let entry = entry.as_object().expect("an object");
                    assert!(entry.values().all(Value::is_string), "{event}");
                    assert!(entry.contains_key("id") && entry.contains_key("complex-order-id"));
                }
            }
            Some("AccountBalance") => {
                assert_eq!(
                    data["unsettled-cryptocurrency-fiat-amount"],
                    json!("0.0"),
                    "{event}"
                );
                assert_eq!(
                    data["unsettled-cryptocurrency-fiat-effect"],
                    json!("None"),
                    "{event}"
                );
            }
            _ => {}
        }
    }
    sim.shutdown().await;

    // With `numeric_user_ids`, about a quarter of the script's new orders carry a number.
    let sim = TestSim::start(SimConfig {
        numeric_user_ids: true,
        ..paused_config()
    })
    .await;
    let events = script_notifications(&sim, 60, 0).await;
    let user_ids: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == json!("Order"))
        .map(|e| &e["data"]["user-id"])
        .collect();
    assert!(user_ids.iter().any(|u| u.is_number()), "{user_ids:?}");
    assert!(user_ids.iter().any(|u| u.is_string()), "{user_ids:?}");
    sim.shutdown().await;
}
