//! The fault-scenario suite: one test per fault of the simulator's control API. Changes are
//! made upstream while the gateway cannot see them; after the fault, every such change must
//! reach an SSE subscriber as an event and the gateway's snapshot must equal the simulator's
//! truth (every field) within 5 s.

use std::time::Duration;

use crate::helpers::gateway::{SseClient, TestGateway};
use crate::helpers::{FAST, FIVE_SECONDS, FUTURE_MS, INDIVIDUAL, wait_until};
use serde_json::{Value, json};
use tokio::time::Instant;

async fn subscribed(gw: &TestGateway) -> SseClient {
    let mut sse = gw.sse("/v1/accounts/individual/events", None).await;
    assert_eq!(sse.next(FIVE_SECONDS).await.event, "snapshot");
    sse
}

/// Changes made upstream while the simulator delivers nothing: an order fills, a position
/// closes, the cash balance moves. The simulator's truth changes; the gateway sees nothing.
async fn changes_in_a_gap(gw: &TestGateway, order_id: u64, sse: &mut SseClient) {
    gw.sim_post("/sim/faults/silent", json!({"enabled": true}))
        .await;
    let order = json!({"id": order_id, "status": "Filled", "size": 1, "updated-at": FUTURE_MS + order_id as i64,
        "legs": [{"symbol": "AAPL", "instrument-type": "Equity", "action": "Sell to Close", "quantity": 1, "remaining-quantity": 0,
            "fills": [{"fill-id": format!("gap-{order_id}"), "quantity": 1, "fill-price": "231.45"}]}]});
    gw.inject(INDIVIDUAL, "Order", order).await;
    let closed = json!({"symbol": "AAPL", "instrument-type": "Equity", "quantity": "0", "quantity-direction": "Zero"});
    gw.inject(INDIVIDUAL, "CurrentPosition", closed).await;
    let mut balance = gw
        .sim_get(&format!("/sim/accounts/{INDIVIDUAL}/truth"))
        .await["balance"]
        .clone();
    balance["cash-balance"] = json!("12345.67");
    gw.inject(INDIVIDUAL, "AccountBalance", balance).await;
    let leaked: Vec<_> = sse
        .drain(Duration::from_millis(200))
        .await
        .into_iter()
        .filter(|e| e.event != "status")
        .collect();
    assert!(leaked.is_empty(), "a silent upstream delivered {leaked:?}");
}

/// Reads the stream until the three gap changes arrived as `resync` events.
async fn expect_gap_events(sse: &mut SseClient, order_id: u64, limit: Duration) {
    let deadline = Instant::now() + limit;
    let (mut order, mut position, mut balance) = (false, false, false);
    while !(order && position && balance) {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = sse.next(left).await;
        let data = &event.data["data"];
        if event.data["source"] != "resync" {
            continue;
        }
        match event.event.as_str() {
            "Order" if data["id"] == order_id => {
                assert_eq!(data["status"], "Filled");
                order = true;
            }
            "CurrentPosition" if data["symbol"] == "AAPL" => {
                assert_eq!(data["quantity-direction"], "Zero");
                assert_eq!(data["quantity"], "0");
                position = true;
            }
            "AccountBalance" => {
                assert_eq!(data["cash-balance"], "12345.67");
                balance = true;
            }
            _ => {}
        }
    }
}

/// Gap, then `fault`; the gap's changes must arrive and the state converge within 5 s.
async fn reconnecting_fault(fault: &str, body: Value, order_id: u64) -> TestGateway {
    let gw = TestGateway::start(&FAST).await;
    let mut sse = subscribed(&gw).await;
    changes_in_a_gap(&gw, order_id, &mut sse).await;
    gw.sim_delete("/sim/faults").await;
    gw.sim_post(&format!("/sim/faults/{fault}"), body).await;
    let ended = Instant::now();
    expect_gap_events(&mut sse, order_id, FIVE_SECONDS).await;
    gw.converge(
        "individual",
        INDIVIDUAL,
        FIVE_SECONDS.saturating_sub(ended.elapsed()),
    )
    .await;
    let upstream = gw.upstream("individual").await;
    assert!(
        upstream["reconnects"].as_u64().unwrap() >= 1,
        "{fault} must force a reconnect: {upstream}"
    );
    assert_eq!(upstream["state"], "live");
    drop(sse);
    gw.assert_no_leaks();
    gw
}

#[tokio::test]
async fn tcp_drop_without_close_frame() {
    let gw = reconnecting_fault("drop", json!({}), 910_001).await;
    let error = gw.upstream("individual").await["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        error.contains("connection ended") || error.contains("read failed"),
        "{error}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn server_close_1000_bye() {
    let gw = reconnecting_fault("close", json!({}), 910_002).await;
    assert_eq!(
        gw.upstream("individual").await["last_error"],
        "account streamer: closed by tastytrade 1000 Bye"
    );
    gw.stop().await;
}

#[tokio::test]
async fn all_tokens_expire_at_once() {
    // The next heartbeat carries a token tastytrade now refuses: `failed`, one
    // re-authentication, reconnect, resync.
    let gw = reconnecting_fault("expire-tokens", json!({}), 910_003).await;
    assert_eq!(
        gw.upstream("individual").await["last_error"],
        "account streamer: heartbeat refused: failed"
    );
    gw.stop().await;
}

#[tokio::test]
async fn rest_500s_during_the_resync_are_retried() {
    let gw = TestGateway::start(&FAST).await;
    let mut sse = subscribed(&gw).await;
    changes_in_a_gap(&gw, 910_004, &mut sse).await;
    gw.sim_delete("/sim/faults").await;
    gw.sim_post(
        "/sim/faults/rest-errors",
        json!({"count": 3, "status": 500}),
    )
    .await;
    gw.sim_post("/sim/faults/drop", json!({})).await;
    let ended = Instant::now();
    expect_gap_events(&mut sse, 910_004, FIVE_SECONDS).await;
    gw.converge(
        "individual",
        INDIVIDUAL,
        FIVE_SECONDS.saturating_sub(ended.elapsed()),
    )
    .await;
    let individual = gw.upstream("individual").await["reconnects"]
        .as_u64()
        .unwrap();
    let roth = gw.upstream("roth-ira").await["reconnects"]
        .as_u64()
        .unwrap();
    assert_eq!(
        individual + roth,
        2 + 3,
        "one reconnect per socket drop and one per failed resync"
    );
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn rest_429_retry_after_is_honoured() {
    let gw = TestGateway::start(&[
        "--heartbeat-secs",
        "2",
        "--backoff-cap-secs",
        "1",
        "--accounts",
        "main=5WT31842",
    ])
    .await;
    gw.sim_post(
        "/sim/faults/rest-errors",
        json!({"count": 1, "status": 429, "retry_after_secs": 2}),
    )
    .await;
    gw.sim_post("/sim/faults/drop", json!({})).await;
    let started = Instant::now();
    let mut waited = Duration::ZERO;
    while waited < Duration::from_secs(8) {
        let upstream = gw.upstream("main").await;
        if upstream["reconnects"] == 2 && upstream["state"] == "live" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited = started.elapsed();
    }
    let upstream = gw.upstream("main").await;
    assert_eq!(upstream["state"], "live", "{upstream}");
    assert_eq!(
        upstream["reconnects"], 2,
        "the drop, then the 429: {upstream}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "reconnected after {took:?}, before Retry-After's 2 s"
    );
    assert!(
        took < Duration::from_secs(6),
        "reconnected only after {took:?}"
    );
    gw.converge("main", INDIVIDUAL, FIVE_SECONDS).await;
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn added_latency_slows_but_does_not_break() {
    let gw = TestGateway::start(&FAST).await;
    let mut sse = subscribed(&gw).await;
    changes_in_a_gap(&gw, 910_006, &mut sse).await;
    gw.sim_delete("/sim/faults").await;
    gw.sim_post("/sim/faults/latency", json!({"ms": 300})).await;
    gw.sim_post("/sim/faults/drop", json!({})).await;
    let ended = Instant::now();
    expect_gap_events(&mut sse, 910_006, FIVE_SECONDS).await;
    gw.converge(
        "individual",
        INDIVIDUAL,
        FIVE_SECONDS.saturating_sub(ended.elapsed()),
    )
    .await;
    assert_eq!(gw.upstream("individual").await["state"], "live");
    gw.sim_delete("/sim/faults").await;
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn silent_stream_is_caught_by_the_reconcile_watchdog() {
    let gw = TestGateway::start(&[
        "--heartbeat-secs",
        "2",
        "--backoff-cap-secs",
        "1",
        "--reconcile-secs",
        "5",
    ])
    .await;
    let mut sse = subscribed(&gw).await;
    // The simulator stays silent: acks flow, notifications do not (tastyware#222, #265).
    changes_in_a_gap(&gw, 910_007, &mut sse).await;
    let started = Instant::now();
    expect_gap_events(&mut sse, 910_007, Duration::from_secs(5) + FIVE_SECONDS).await;
    gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    assert!(started.elapsed() <= Duration::from_secs(10));
    let upstream = gw.upstream("individual").await;
    assert_eq!(
        upstream["reconnects"], 0,
        "the reconcile found the changes without a reconnect: {upstream}"
    );
    assert!(
        upstream["resync_events"].as_u64().unwrap() >= 3,
        "{upstream}"
    );
    gw.sim_delete("/sim/faults").await;
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn malformed_frame_is_skipped_and_counted_and_the_socket_lives_on() {
    let gw = TestGateway::start(&FAST).await;
    let mut sse = subscribed(&gw).await;
    gw.sim_post("/sim/faults/malformed", json!({"account": INDIVIDUAL}))
        .await;
    wait_until(
        "the malformed frame to be counted",
        FIVE_SECONDS,
        || async { gw.upstream("individual").await["skipped_frames"] == 1 },
    )
    .await;
    gw.inject(
        INDIVIDUAL,
        "Order",
        json!({"id": 910_008, "status": "Live", "updated-at": FUTURE_MS}),
    )
    .await;
    let event = sse.next_of("Order", FIVE_SECONDS).await;
    assert_eq!(event.data["data"]["id"], 910_008);
    assert_eq!(event.data["source"], "stream");
    let upstream = gw.upstream("individual").await;
    assert_eq!(upstream["reconnects"], 0);
    assert_eq!(upstream["state"], "live");
    gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

async fn oversized(fragmented: bool) {
    let gw = TestGateway::start(&FAST).await;
    let mut sse = subscribed(&gw).await;
    gw.sim_post(
        "/sim/faults/oversized",
        json!({"account": INDIVIDUAL, "bytes": 1_200_000, "fragmented": fragmented}),
    )
    .await;
    let event = sse.next_of("OrderChain", FIVE_SECONDS).await;
    let nodes = event.data["data"]["lite-nodes"].as_array().unwrap().len();
    assert!(
        nodes > 1000,
        "the whole >1 MiB frame arrived ({nodes} nodes)"
    );
    assert_eq!(event.data["data"]["lite-nodes-sizes"], json!(nodes));
    assert_eq!(event.data["data"]["account-number"], "***1842");
    assert!(serde_json::to_vec(&event.data).unwrap().len() > 1_200_000);
    let upstream = gw.upstream("individual").await;
    assert_eq!(upstream["reconnects"], 0);
    assert_eq!(upstream["skipped_frames"], 0);
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn oversized_frame_over_one_mebibyte_passes_through() {
    oversized(false).await;
}

#[tokio::test]
async fn oversized_fragmented_frame_is_reassembled() {
    oversized(true).await;
}
