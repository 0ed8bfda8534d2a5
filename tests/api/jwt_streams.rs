//! Live streams opened with a token end with it: an SSE stream ends within a second of the
//! token's `exp` with a `: token expired` comment, and reopened with a fresh token and its
//! last id it goes on with no gap and no duplicate; a WebSocket is told `token_expiring`
//! before `exp`, goes on after a `refresh` with a fresh token (a narrower one is refused),
//! and without one is closed with 4001 at `exp`. Nothing received holds a token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::gateway::{SseClient, SseEvent, TestGateway};
use crate::helpers::streams::{LeakScan, split_id};
use crate::helpers::tokens::{SECRET, balance, claims, claims_until, hs256, now, now_f64};
use crate::helpers::ws::{self, Ws, scanned_close, scanned_json, send_json, ws_url};
use crate::helpers::{FIVE_SECONDS, INDIVIDUAL, wait_until};
use tokio_tungstenite::tungstenite::Message;

/// A gateway with tokens (no leeway, a 2 s WebSocket notice) and the key `t0ken` for the
/// helpers.
async fn gateway() -> TestGateway {
    gateway_noticing("2").await
}

/// Like [`gateway`], with the WebSocket notice `notice_secs` before expiry.
async fn gateway_noticing(notice_secs: &str) -> TestGateway {
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-secret",
        SECRET,
        "--jwt-leeway-secs",
        "0",
        "--jwt-expiry-notice-secs",
        notice_secs,
    ];
    TestGateway::start_as(&flags, Some("t0ken")).await
}

async fn open_sse(gw: &TestGateway, token: &str, last_id: Option<&str>) -> SseClient {
    let bearer = format!("Bearer {token}");
    let mut headers = vec![("authorization", bearer.as_str())];
    if let Some(id) = last_id {
        headers.push(("last-event-id", id));
    }
    let url = format!("{}/v1/accounts/individual/events", gw.url);
    let sse = SseClient::connect_with(&gw.http, &url, &headers, gw.received.clone()).await;
    assert_eq!(sse.status, 200);
    sse
}

fn cash(event: &SseEvent) -> Option<&str> {
    (event.event == "AccountBalance")
        .then(|| event.data["data"]["cash-balance"].as_str())
        .flatten()
}

#[tokio::test]
async fn an_sse_stream_ends_at_exp_and_resumes_with_a_fresh_token_losing_nothing() {
    let gw = gateway().await;
    let exp = now() + 3;
    let short = hs256(&claims_until(&["individual"], exp));
    let mut sse = open_sse(&gw, &short, None).await;
    let snapshot = sse.next(FIVE_SECONDS).await;
    assert_eq!(snapshot.event, "snapshot");
    let mut last_id = snapshot.id.clone();
    for amount in ["1001.01", "1002.02"] {
        gw.inject(
            INDIVIDUAL,
            "AccountBalance",
            balance(&gw, INDIVIDUAL, amount).await,
        )
        .await;
        loop {
            let event = sse.next(FIVE_SECONDS).await;
            last_id = event.id.clone();
            if cash(&event) == Some(amount) {
                break;
            }
        }
    }
    // The stream ends by itself, within a second after exp, never before it.
    while let Some(event) = sse.try_next(Duration::from_secs(6)).await {
        last_id = event.id.clone();
    }
    let ended = now_f64();
    assert_ended_at_exp(ended, exp, "ended");
    let raw = String::from_utf8_lossy(&gw.received.lock().unwrap()).to_string();
    assert!(raw.contains("\n: token expired; reconnect with a fresh token and Last-Event-ID\n\n"));

    // Events while the client is away, then a reconnect with a fresh token and the last id.
    for amount in ["1003.03", "1004.04"] {
        gw.inject(
            INDIVIDUAL,
            "AccountBalance",
            balance(&gw, INDIVIDUAL, amount).await,
        )
        .await;
    }
    wait_until("the gateway has both events", FIVE_SECONDS, || async {
        gw.snapshot("individual").await["balance"]["cash-balance"] == "1004.04"
    })
    .await;
    let fresh = hs256(&claims(&["individual"], 60));
    let mut again = open_sse(&gw, &fresh, Some(&last_id)).await;
    let (epoch, mut seq) = split_id(&last_id);
    let mut amounts = Vec::new();
    while amounts.len() < 2 {
        let event = again.next(FIVE_SECONDS).await;
        assert!(
            !matches!(event.event.as_str(), "snapshot" | "reset"),
            "resumed: {event:?}"
        );
        let (event_epoch, event_seq) = split_id(&event.id);
        assert_eq!(
            (event_epoch.as_str(), event_seq),
            (epoch.as_str(), seq + 1),
            "no gap, no duplicate"
        );
        seq = event_seq;
        amounts.extend(cash(&event).map(str::to_string));
    }
    assert_eq!(amounts, ["1003.03", "1004.04"]);
    drop(again);
    let scan = LeakScan::new(&[&short, &fresh, SECRET]);
    scan.scan("the SSE streams", raw.as_bytes());
    scan.assert_clean(1_000);
    gw.stop().await;
}

#[tokio::test]
async fn with_the_default_leeway_an_sse_stream_still_ends_within_a_second_of_exp() {
    // The leeway (30 s by default) is for accepting a token at request time, not for how
    // long a stream may outlive it.
    let flags = ["--api-key", "ops:t0ken:*", "--jwt-secret", SECRET];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let exp = now() + 3;
    let token = hs256(&claims_until(&["individual"], exp));
    let mut sse = open_sse(&gw, &token, None).await;
    assert_eq!(sse.next(FIVE_SECONDS).await.event, "snapshot");
    // Reads until the stream ends, or 6 s of silence (which fails below).
    while sse.try_next(Duration::from_secs(6)).await.is_some() {}
    assert_ended_at_exp(now_f64(), exp, "ended");
    let raw = String::from_utf8_lossy(&gw.received.lock().unwrap()).to_string();
    assert!(raw.contains("\n: token expired; reconnect with a fresh token and Last-Event-ID\n\n"));
    gw.stop().await;
}

/// A stream must end at its token's `exp`: not before, and within a second after.
fn assert_ended_at_exp(at: f64, exp: u64, what: &str) {
    let late = at - exp as f64;
    assert!(
        (-0.05..=1.0).contains(&late),
        "{what} {late:.3} s after exp"
    );
}

/// Waits (at most `limit`) for the socket to close, and checks it was closed with 4001 at
/// `exp`.
async fn assert_closed_at_exp(socket: &mut Ws, exp: u64, limit: Duration, scan: &LeakScan) {
    let (code, reason, _) = scanned_close(socket, limit, scan).await;
    assert_eq!(code, 4001, "{reason}");
    assert_ended_at_exp(now_f64(), exp, "closed");
}

/// The next message of `kind`, skipping others (events, keep-alives), scanned for leaks.
async fn next_of(socket: &mut Ws, kind: &str, limit: Duration, scan: &LeakScan) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let message = scanned_json(socket, left, scan).await;
        if message["type"] == kind {
            return message;
        }
    }
}

#[tokio::test]
async fn a_websocket_is_told_before_exp_goes_on_after_refresh_and_closes_with_4001() {
    // A 4 s notice leaves room for three round trips before exp on a loaded machine (a 2 s
    // one once closed the socket first in CI).
    let gw = gateway_noticing("4").await;
    let exp_a = now() + 6;
    let first = hs256(&claims_until(&["individual"], exp_a));
    let narrower = hs256(&claims(&["roth-ira"], 60));
    let expired = hs256(&claims(&["individual"], -5));
    // The second token expires well after the first: its notice comes after the event below.
    let exp_b = exp_a + 6;
    let second = hs256(&claims_until(&["individual", "roth-ira"], exp_b));
    let scan = LeakScan::new(&[&first, &narrower, &expired, &second, SECRET]);
    let mut socket = ws::connect(&ws_url(&gw.url, ""), Some(&first)).await;

    // Out of scope answers like an unknown account.
    send_json(
        &mut socket,
        json!({"op": "subscribe", "id": 0, "accounts": ["roth-ira"]}),
    )
    .await;
    assert_eq!(
        next_of(&mut socket, "error", FIVE_SECONDS, &scan).await["code"],
        "unknown_account"
    );
    send_json(
        &mut socket,
        json!({"op": "subscribe", "id": 1, "accounts": ["individual"]}),
    )
    .await;
    assert_eq!(
        next_of(&mut socket, "ack", FIVE_SECONDS, &scan).await["id"],
        1
    );

    let notice = next_of(&mut socket, "token_expiring", FIVE_SECONDS, &scan).await;
    assert_eq!(notice["expires_at"], exp_a);
    assert!(
        now_f64() >= exp_a as f64 - 4.2,
        "the notice comes about 4 s before exp"
    );

    for (token, code) in [
        (&narrower, "token_scope_too_narrow"),
        (&expired, "token_expired"),
    ] {
        send_json(
            &mut socket,
            json!({"op": "refresh", "id": 2, "token": token}),
        )
        .await;
        let refusal = next_of(&mut socket, "error", FIVE_SECONDS, &scan).await;
        assert_eq!(
            (&refusal["id"], &refusal["code"]),
            (&json!(2), &json!(code))
        );
    }
    send_json(
        &mut socket,
        json!({"op": "refresh", "id": 3, "token": second}),
    )
    .await;
    let ack = next_of(&mut socket, "ack", FIVE_SECONDS, &scan).await;
    assert_eq!(
        (&ack["op"], &ack["expires_at"]),
        (&json!("refresh"), &json!(exp_b))
    );

    // Past the first token's exp, the stream goes on.
    wait_until("the first token has expired", 2 * FIVE_SECONDS, || async {
        now_f64() > exp_a as f64 + 0.3
    })
    .await;
    gw.inject(
        INDIVIDUAL,
        "AccountBalance",
        balance(&gw, INDIVIDUAL, "2002.02").await,
    )
    .await;
    let event = next_of(&mut socket, "AccountBalance", FIVE_SECONDS, &scan).await;
    assert_eq!(event["data"]["cash-balance"], "2002.02");

    // No refresh this time: notice, then 4001 at exp.
    let notice = next_of(&mut socket, "token_expiring", FIVE_SECONDS, &scan).await;
    assert_eq!(notice["expires_at"], exp_b);
    assert_closed_at_exp(&mut socket, exp_b, 2 * FIVE_SECONDS, &scan).await;
    scan.assert_clean(1_000);
    gw.stop().await;
}

#[tokio::test]
async fn a_busy_websocket_is_closed_at_exp_and_sends_no_event_after_it() {
    // The default leeway, and a simulator stepping 200 times a second: the feed is always
    // ready, and must not win over the token's expiry.
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-secret",
        SECRET,
        "--sim-rate",
        "200",
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let exp = now() + 3;
    let token = hs256(&claims_until(&["*"], exp));
    let scan = LeakScan::new(&[&token, SECRET]);
    let mut socket = ws::connect(&ws_url(&gw.url, ""), Some(&token)).await;
    send_json(&mut socket, json!({"op": "subscribe", "id": 1})).await;
    // Every message with the time it arrived, until the close.
    let mut events = Vec::new();
    let closed = loop {
        match ws::next_frame(&mut socket, Duration::from_secs(8)).await {
            Message::Text(text) => {
                let at = now_f64();
                scan.scan("a WebSocket message", text.as_bytes());
                let message: Value = serde_json::from_str(&text).unwrap();
                if message.get("received_at").is_some() {
                    events.push((at, message));
                }
            }
            Message::Close(frame) => break (now_f64(), frame),
            _ => {}
        }
    };
    let (at, frame) = closed;
    let frame = frame.expect("a close code");
    assert_eq!(u16::from(frame.code), 4001, "{}", frame.reason);
    assert_ended_at_exp(at, exp, "closed");
    let busy = events
        .iter()
        .filter(|(at, _)| *at > exp as f64 - 1.0)
        .count();
    assert!(
        busy >= 20,
        "the feed was busy to the end ({busy} events in the last second)"
    );
    for (arrived, event) in &events {
        let received = chrono::DateTime::parse_from_rfc3339(event["received_at"].as_str().unwrap())
            .unwrap()
            .timestamp_micros() as f64
            / 1e6;
        // The gateway took it in before exp; the socket carried it a moment later at most.
        assert!(
            received <= exp as f64 + 0.005,
            "an event the gateway took in {:.3} s after exp went out",
            received - exp as f64
        );
        assert!(
            *arrived <= exp as f64 + 0.25,
            "an event arrived {:.3} s after exp",
            arrived - exp as f64
        );
    }
    scan.assert_clean(1_000);
    gw.stop().await;
}

#[tokio::test]
async fn a_refresh_waiting_on_a_slow_key_server_does_not_keep_a_websocket_past_exp() {
    use crate::helpers::tokens::{jwks, mint, rsa};
    use jsonwebtoken::Algorithm::RS256;
    let set = jwks(&[(&rsa(1), RS256, "rsa-1")]);
    let slow = Arc::new(AtomicBool::new(false));
    let stalled = slow.clone();
    let router = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (set, stalled) = (set.clone(), stalled.load(Ordering::SeqCst));
            async move {
                if stalled {
                    // A key server that hangs (the gateway's fetch timeout is 10 s).
                    tokio::time::sleep(Duration::from_secs(9)).await;
                }
                set
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-jwks",
        &url,
        "--jwt-jwks-min-refetch-secs",
        "1",
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let exp = now() + 3;
    let token = mint(RS256, &rsa(1), Some("rsa-1"), &claims_until(&["*"], exp));
    // Signed by a key the server would serve under a new id: the refresh re-reads the set.
    let fresh = mint(RS256, &rsa(1), Some("rsa-new"), &claims(&["*"], 60));
    let scan = LeakScan::new(&[&token, &fresh]);
    let mut socket = ws::connect(&ws_url(&gw.url, ""), Some(&token)).await;
    send_json(&mut socket, json!({"op": "subscribe", "id": 1})).await;
    next_of(&mut socket, "ack", FIVE_SECONDS, &scan).await;
    wait_until("the set may be re-read", FIVE_SECONDS, || async {
        now_f64() > exp as f64 - 1.5
    })
    .await;
    slow.store(true, Ordering::SeqCst);
    send_json(
        &mut socket,
        json!({"op": "refresh", "id": 2, "token": fresh}),
    )
    .await;
    assert_closed_at_exp(&mut socket, exp, Duration::from_secs(12), &scan).await;
    scan.assert_clean(1_000);
    gw.stop().await;
}

#[tokio::test]
async fn a_token_that_expires_in_the_far_future_opens_streams() {
    // `exp` may be any number: one the runtime's clock cannot reach must not crash a stream.
    let gw = gateway().await;
    let token = hs256(&claims_until(&["individual"], u64::MAX));
    let scan = LeakScan::new(&[&token, SECRET]);
    let mut sse = open_sse(&gw, &token, None).await;
    assert_eq!(sse.next(FIVE_SECONDS).await.event, "snapshot");
    drop(sse);
    let mut socket = ws::connect(&ws_url(&gw.url, ""), Some(&token)).await;
    send_json(&mut socket, json!({"op": "subscribe", "id": 1})).await;
    next_of(&mut socket, "ack", FIVE_SECONDS, &scan).await;
    next_of(&mut socket, "snapshot", FIVE_SECONDS, &scan).await;
    scan.assert_clean(100);
    gw.stop().await;
}
