//! Bounded lateness (`--max-lag-ms`): a subscriber that stops reading while events keep
//! coming is not handed old data as if it were live. When it reads again, the gateway finds
//! its oldest undelivered event older than the bound and cuts it, saying so (SSE comment,
//! then the end); resuming from its last id gives exactly the rest. The bus is large enough
//! that the slow-consumer cut (`--subscriber-queue`) cannot be what ends it.

use std::time::Duration;

use crate::helpers::gateway::TestGateway;
use crate::helpers::streams::{RawHttp, assert_resume_gives_the_rest, padded_order, split_id};
use crate::helpers::{INDIVIDUAL, SECOND, wait_until};
use serde_json::{Value, json};
use tokio::time::Instant;

const MAX_LAG: Duration = Duration::from_millis(300);
const EVENTS: u64 = 400;
const PER_BATCH: u64 = 50;
/// 400 x 20 KB = 8 MB: more than the gateway's socket send buffer (4 MB at most here) and
/// the reader's 4 KB receive buffer hold, so most of it waits in the gateway.
const PAD: usize = 20_000;

async fn head_seq(gw: &TestGateway) -> u64 {
    let (_, accounts) = gw.get("/v1/accounts").await;
    accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "individual")
        .unwrap()["seq"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_in_time_is_cut_with_its_reason_and_resumes() {
    let gw = TestGateway::start(&["--max-lag-ms", "300", "--subscriber-queue", "4096"]).await;
    let mut slow = RawHttp::get(
        gw.gateway.addr,
        "/v1/accounts/individual/events",
        &[],
        Some(4096),
        None,
    )
    .await;
    let first = slow.read_frames(1, 5 * SECOND).await;
    let (epoch, start_seq) = split_id(first[0].id().unwrap());

    for batch in 0..EVENTS / PER_BATCH {
        let events: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({"type": "Order", "data": padded_order(800_000 + i, batch * PER_BATCH + i, PAD)}))
            .collect();
        gw.sim_post(
            &format!("/sim/accounts/{INDIVIDUAL}/events"),
            json!({"events": events, "batch": true}),
        )
        .await;
    }
    let last_seq = start_seq + EVENTS;
    wait_until("every event published", 10 * SECOND, || async {
        head_seq(&gw).await >= last_seq
    })
    .await;
    // Lateness is time: the events waiting in the gateway must grow older than the bound.
    tokio::time::sleep(MAX_LAG * 2).await;

    let reading = Instant::now();
    slow.read_to_end(20 * SECOND).await;
    let took = reading.elapsed();
    let frames = slow.frames();
    let (comment, events) = frames[1..].split_last().expect("frames after the snapshot");
    let line = comment.lines.join("\n");
    assert!(
        line.starts_with(": lagging; the oldest undelivered event waited "),
        "the last frame says why the stream ends: {line:?}"
    );
    let waited: u64 = line
        .trim_start_matches(": lagging; the oldest undelivered event waited ")
        .split(' ')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("a wait in ms: {line:?}"));
    assert!(waited > MAX_LAG.as_millis() as u64, "{line}");
    assert!(
        took < MAX_LAG + SECOND,
        "cut within max-lag + 1 s of reading again, took {took:?}"
    );
    for (n, frame) in events.iter().enumerate() {
        let seq = start_seq + 1 + n as u64;
        assert_eq!(frame.id(), Some(format!("{epoch}-{seq}").as_str()));
    }
    let cut_at = start_seq + events.len() as u64;
    assert!(
        cut_at < last_seq,
        "cut before the end, not handed every old event"
    );
    let metrics = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("ttgw_lagging_subscriber_cuts_total{transport=\"sse\"} 1"),
        "the cut is counted"
    );

    // Resuming from its last id gives exactly the rest.
    assert_resume_gives_the_rest(gw.gateway.addr, &epoch, cut_at, last_seq, None).await;
    gw.stop().await;
}
