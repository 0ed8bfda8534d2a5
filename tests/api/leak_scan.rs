//! Leak scan: every byte the tests receive (headers, bodies, SSE, WebSocket messages and
//! close reasons) and every log line of the run is scanned for the full account numbers,
//! the simulator's tokens, its demo credentials, the API-key secrets, the JWT secret and
//! every token (JWT) presented, and each segment of each: 0 hits. Logs are
//! captured by a tracing subscriber at the gateway's levels (`info,tower_http=info`)
//! plus `debug` for `tastytrade_gateway`, in both log formats, while a workload with upstream
//! faults (drop, expire-tokens, rest-errors, malformed), REST calls (including a 404 for a
//! full account number), SSE with `access_token=` (a key and a token), a token cookie,
//! refused tokens, WebSocket runs and token refreshes on a WebSocket (accepted and refused).

use std::cell::Cell;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::helpers::gateway::TestGateway;
use crate::helpers::streams::{LeakScan, RawHttp};
use crate::helpers::tokens;
use crate::helpers::ws::{self, scanned_close, scanned_json, send_json, ws_url};
use crate::helpers::{INDIVIDUAL, ROTH, SECOND, wait_until};
use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tracing::Dispatch;
use tracing::dispatcher::DefaultGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

/// The gateway's default filter (`src/telemetry.rs`) plus debug for the gateway itself.
const FILTER: &str = "info,tower_http=info,tastytrade_gateway=debug";
/// What `RUST_LOG=debug` adds about requests: tower-http's events in the gateway's request
/// spans.
const REQUESTS: &str = "tower_http=debug,tastytrade_gateway::api=debug";

/// A subscriber that captures every log line: at the gateway's levels in both log formats,
/// plus the request logging an operator gets with `RUST_LOG=debug`.
fn capture() -> (Dispatch, Arc<Mutex<Vec<u8>>>) {
    let buffer: Arc<Mutex<Vec<u8>>> = Arc::default();
    let writer = |buffer: &Arc<Mutex<Vec<u8>>>| {
        let buffer = buffer.clone();
        move || Capture(buffer.clone())
    };
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer(&buffer))
                .with_filter(EnvFilter::new(FILTER)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_writer(writer(&buffer))
                .with_filter(EnvFilter::new(FILTER)),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(writer(&buffer))
                .with_filter(EnvFilter::new(REQUESTS)),
        );
    (Dispatch::new(subscriber), buffer)
}

thread_local! {
    /// The capture, as the default subscriber of a thread of this test's runtime.
    static CAPTURING: Cell<Option<DefaultGuard>> = const { Cell::new(None) };
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Waits until the accounts' upstreams together have reconnected more than `before` times
/// and all are live; returns the total reconnect count.
async fn live_again(gw: &TestGateway, before: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + 20 * SECOND;
    loop {
        let (_, body) = gw.get("/v1/accounts").await;
        let accounts = body["accounts"].as_array().cloned().unwrap_or_default();
        let reconnects: u64 = accounts
            .iter()
            .map(|a| a["upstream"]["reconnects"].as_u64().unwrap_or_default())
            .sum();
        if reconnects > before && accounts.iter().all(|a| a["upstream"]["state"] == "live") {
            return reconnects;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconnect to live within 20 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn get_with(
    gw: &TestGateway,
    scan: &LeakScan,
    path: &str,
    bearer: Option<&str>,
) -> (u16, Value) {
    let mut request = gw.http.get(format!("{}{path}", gw.url));
    if let Some(secret) = bearer {
        request = request.bearer_auth(secret);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    scan.scan(
        "response headers",
        format!("{:?}", response.headers()).as_bytes(),
    );
    let body = response.bytes().await.expect("body");
    scan.scan("response body", &body);
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Other tests run beside this one in the process, so the capture is not the process's
/// global subscriber: it is the default subscriber of this test's thread and of every
/// thread of its runtime, where the gateway, its simulator and their tasks run. The logs
/// are this test's, and all of them.
#[test]
fn nothing_received_and_nothing_logged_holds_an_account_number_or_a_secret() {
    // tracing-core works out a callsite's interest when the callsite is first hit, and with
    // only one dispatcher registered it asks that thread's default: on another test's
    // thread, no subscriber, so "never", cached for the whole process, and the capture
    // misses the line (it did, once tests that start gateways ran beside this one). With a
    // second dispatcher registered it asks every registered one, the capture among them.
    let _second = Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let (dispatch, logs) = capture();
    let _capturing = tracing::dispatcher::set_default(&dispatch);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            CAPTURING.set(Some(tracing::dispatcher::set_default(&dispatch)));
        })
        .on_thread_stop(|| drop(CAPTURING.take()))
        .build()
        .expect("a runtime")
        .block_on(workload(&logs));
}

async fn workload(logs: &Mutex<Vec<u8>>) {
    let gw = TestGateway::start_as(
        &[
            "--api-key",
            "ops:t0ken:*",
            "--api-key",
            "reader:s3cret:individual",
            "--heartbeat-secs",
            "2",
            "--backoff-cap-secs",
            "1",
            "--jwt-secret",
            tokens::SECRET,
        ],
        Some("t0ken"),
    )
    .await;
    let token = tokens::hs256(&tokens::claims(&["individual"], 300));
    // Past the default leeway (30 s).
    let expired = tokens::hs256(&tokens::claims(&["individual"], -120));
    let fresh = tokens::hs256(&tokens::claims(&["individual"], 600));
    let forged = tokens::mint(
        jsonwebtoken::Algorithm::HS256,
        &tokens::hmac("another-secret-also-32-bytes-long!!"),
        None,
        &tokens::claims(&["*"], 600),
    );
    // Each token whole and each of its segments (header, claims, signature): a log line or
    // an answer holding any one part of a token gives part of it away.
    let presented = [&token, &expired, &fresh, &forged];
    let mut needles: Vec<&str> = vec!["t0ken", "s3cret", tokens::SECRET];
    for token in presented {
        needles.push(token);
        needles.extend(token.split('.').filter(|segment| !segment.is_empty()));
    }
    let scan = LeakScan::new(&needles);

    // Streams: SSE with the key in the query (as EventSource must), SSE with the header, WS.
    let mut sse_query = RawHttp::get(
        gw.gateway.addr,
        "/v1/accounts/individual/events?access_token=s3cret",
        &[],
        None,
        Some(&scan),
    )
    .await;
    assert_eq!(sse_query.head.status, 200);
    scan.scan("response head", sse_query.head.raw.as_bytes());
    let mut sse_all = RawHttp::get(
        gw.gateway.addr,
        "/v1/events",
        &[("Authorization", "Bearer t0ken")],
        None,
        Some(&scan),
    )
    .await;
    let mut sse_token = RawHttp::get(
        gw.gateway.addr,
        &format!("/v1/accounts/individual/events?access_token={token}"),
        &[],
        None,
        Some(&scan),
    )
    .await;
    assert_eq!(sse_token.head.status, 200);
    let cookie = format!("ttgw_token={token}");
    let mut sse_cookie = RawHttp::get(
        gw.gateway.addr,
        "/v1/events",
        &[("Cookie", &cookie)],
        None,
        Some(&scan),
    )
    .await;
    assert_eq!(sse_cookie.head.status, 200);
    let mut ws = ws::connect(&ws_url(&gw.url, "?access_token=t0ken"), None).await;
    send_json(&mut ws, json!({"op": "subscribe", "accounts": ["*"]})).await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await["type"],
        "ack"
    );
    // A WebSocket opened with a token: one refresh accepted, two refused.
    let mut ws_token = ws::connect(&ws_url(&gw.url, ""), Some(&token)).await;
    send_json(
        &mut ws_token,
        json!({"op": "subscribe", "accounts": ["individual"]}),
    )
    .await;
    for (refresh, answer) in [
        (&fresh, "ack"),
        (&expired, "token_expired"),
        (&forged, "token_invalid"),
    ] {
        send_json(
            &mut ws_token,
            json!({"op": "refresh", "id": 7, "token": refresh}),
        )
        .await;
        let deadline = tokio::time::Instant::now() + 5 * SECOND;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = scanned_json(&mut ws_token, left, &scan).await;
            if message["id"] == 7 && (message["type"] == answer || message["code"] == answer) {
                break;
            }
        }
    }
    drop(ws_token);
    let ws_reader = tokio::spawn({
        let scan = scan.clone();
        async move {
            // Reads every message until the gateway closes the socket at shutdown.
            scanned_close(&mut ws, 120 * SECOND, &scan).await
        }
    });

    gw.sim_post("/sim/script", json!({"paused": false, "rate": 20}))
        .await;

    // Upstream faults, one after another, each until the account is live again.
    let mut reconnects = 0;
    gw.sim_post("/sim/faults/drop", json!({"account": INDIVIDUAL}))
        .await;
    reconnects = live_again(&gw, reconnects).await;
    gw.sim_post("/sim/faults/expire-tokens", json!({})).await;
    wait_until("an expired token was refused", 20 * SECOND, || async {
        gw.sim_get("/sim/stats").await["expired_token_messages"]
            .as_u64()
            .unwrap_or_default()
            > 0
    })
    .await;
    reconnects = live_again(&gw, reconnects).await;
    gw.sim_post(
        "/sim/faults/rest-errors",
        json!({"count": 3, "status": 500}),
    )
    .await;
    gw.sim_post("/sim/faults/drop", json!({"account": INDIVIDUAL}))
        .await;
    reconnects = live_again(&gw, reconnects).await;
    gw.sim_post(
        "/sim/faults/rest-errors",
        json!({"count": 1, "status": 429, "retry_after_secs": 1}),
    )
    .await;
    gw.sim_post("/sim/faults/drop", json!({"account": ROTH}))
        .await;
    let reconnects = live_again(&gw, reconnects).await;
    assert!(reconnects >= 4, "every fault cost a reconnect");
    gw.sim_post("/sim/faults/malformed", json!({"account": INDIVIDUAL}))
        .await;
    wait_until("the malformed frame was skipped", 10 * SECOND, || async {
        gw.upstream("individual").await["skipped_frames"]
            .as_u64()
            .unwrap_or_default()
            > 0
    })
    .await;
    // Upstream objects that carry account numbers where nobody expects them: in unknown
    // fields, nested, as keys, in an unknown event type, in the event type itself.
    gw.inject(
        INDIVIDUAL,
        "Order",
        json!({"id": 556001, "status": "Live", "updated-at": 4_102_444_800_000_i64,
               "notes": [format!("from {ROTH} to {INDIVIDUAL}")], ROTH: {"x": INDIVIDUAL}}),
    )
    .await;
    gw.inject(
        INDIVIDUAL,
        "BrandNewThing",
        json!({"owner": INDIVIDUAL, "deep": {"deeper": [ROTH]}}),
    )
    .await;
    gw.sim_post(
        &format!("/sim/accounts/{INDIVIDUAL}/events"),
        json!({"raw": json!({"type": format!("Alert{INDIVIDUAL}"), "data": {"n": 1}}).to_string()}),
    )
    .await;
    gw.sim_post(
        &format!("/sim/accounts/{INDIVIDUAL}/events"),
        json!({"raw": format!("{{\"type\":\"Order\",\"data\":{{\"account-number\":\"{INDIVIDUAL}\"}}")}),
    )
    .await;

    // REST, including full account numbers in paths and wrong keys.
    for (path, bearer, expected) in [
        ("/v1/accounts", Some("t0ken"), 200),
        ("/v1/accounts/individual/snapshot", Some("t0ken"), 200),
        ("/v1/accounts/roth-ira/snapshot", Some("s3cret"), 404),
        ("/v1/accounts/5WT31842/snapshot", Some("t0ken"), 404),
        ("/v1/accounts/5WU09822/events?access_token=t0ken", None, 404),
        (
            "/v1/accounts/5WT31842/snapshot?access_token=wrong-s3cret",
            None,
            401,
        ),
        ("/v1/accounts", Some("5WT31842"), 401),
        ("/v1/accounts/individual/balance", Some(token.as_str()), 200),
        ("/v1/accounts/roth-ira/balance", Some(token.as_str()), 404),
        ("/v1/accounts", Some(expired.as_str()), 401),
        (
            format!("/v1/accounts?access_token={expired}").as_str(),
            None,
            401,
        ),
        ("/readyz", None, 200),
        ("/healthz", None, 200),
    ] {
        let (status, _) = get_with(&gw, &scan, path, bearer).await;
        assert_eq!(status, expected, "{path}");
    }
    // A WebSocket that misbehaves and asks for a full account number.
    let mut other = ws::connect(&ws_url(&gw.url, ""), Some("s3cret")).await;
    other.send(Message::text("{oops")).await.unwrap();
    assert_eq!(
        scanned_json(&mut other, 5 * SECOND, &scan).await["code"],
        "bad_message"
    );
    send_json(
        &mut other,
        json!({"op": "subscribe", "accounts": [INDIVIDUAL], "resume": {INDIVIDUAL: "x-1"}}),
    )
    .await;
    assert_eq!(
        scanned_json(&mut other, 5 * SECOND, &scan).await["code"],
        "unknown_account"
    );
    drop(other);

    // Let the streams carry all of it, then shut down (logs of the shutdown count too).
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    loop {
        sse_query.read_quiet(Duration::from_millis(50)).await;
        sse_all.read_quiet(Duration::from_millis(50)).await;
        let text = sse_all.text();
        if text.contains("556001") && text.contains("BrandNewThing") && text.contains("Alert") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the streams did not carry the injected events within 10 s"
        );
    }
    gw.sim_post("/sim/script", json!({"paused": true})).await;
    gw.stop().await;
    sse_query.read_to_end(10 * SECOND).await;
    sse_all.read_to_end(10 * SECOND).await;
    sse_token.read_to_end(10 * SECOND).await;
    sse_cookie.read_to_end(10 * SECOND).await;
    assert!(
        sse_cookie.text().contains("\"account\":\"individual\""),
        "the cookie stream ran"
    );
    let (code, _, messages) = tokio::time::timeout(20 * SECOND, ws_reader)
        .await
        .expect("the WebSocket closes at shutdown")
        .unwrap();
    assert_eq!(code, 1001);
    assert!(messages.len() > 10, "the WebSocket carried the workload");
    assert!(sse_all.text().contains("***1842"), "masked forms are shown");
    scan.assert_clean(50_000);

    // The logs: clean, captured, and about the workload.
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    let logs_scan = LeakScan::new(&needles);
    logs_scan.scan("the logs", text.as_bytes());
    // The floor only proves the capture caught the workload (the expected lines below say
    // what it caught). Captured per thread in this shared process, the logs came to 10 KB in
    // one CI run and more in others, so the floor sits below that; a capture of the whole
    // process (this test in a binary of its own) would let it rise again.
    logs_scan.assert_clean(8_000);
    for expected in [
        "gateway listening",
        "upstream connection failed; reconnecting",
        "skipped an upstream frame",
        "passing through an event of an unknown type",
        "\"message\":\"gateway listening\"",
        "started processing request",
        "request{method=GET route=/v1/accounts/{id}/snapshot version=HTTP/1.1 request_id=",
        "request{method=GET route=/v1/accounts/{id}/events version=HTTP/1.1 request_id=",
    ] {
        assert!(text.contains(expected), "the logs hold {expected:?}");
    }
}
