//! Slow consumers: a client that stops reading (a raw socket with a small receive buffer)
//! while thousands of ~2 KB events are published is cut at its bounded queue
//! (`--subscriber-queue 64`): when it reads again it finds only contiguous events, then the
//! slow-consumer comment and the end of the SSE stream, or the close code 4008 on WebSocket;
//! resuming from its last id gives exactly the rest. Meanwhile a fast client receives every
//! event in order, without gaps, each batch promptly; the process's memory stays bounded.

use std::sync::Arc;
use std::time::Duration;

use crate::helpers::gateway::TestGateway;
use crate::helpers::streams::{
    LeakScan, RawHttp, assert_resume_gives_the_rest, padded_order, split_id, vm_rss_kib,
};
use crate::helpers::ws::{self, scanned_json, send_json, ws_url};
use crate::helpers::{INDIVIDUAL, SECOND};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

const BATCHES: u64 = 60;
/// Batches published before the slow client stalls, for a baseline of the fast clients' delay.
const BASELINE: u64 = 10;
const PER_BATCH: u64 = 50;
const PAD: usize = 2000;
/// How long one batch may take to reach the fast client (generous: a loaded 2-core box).
const BATCH_LIMIT: Duration = Duration::from_secs(3);
/// How much the process may grow while all of this happens (generous).
const RSS_GROWTH_LIMIT_KIB: u64 = 256 * 1024;

/// What a fast reader has seen so far: the last seq, or why it stopped trusting the stream.
type Progress = watch::Receiver<(u64, Option<String>)>;

/// Checks that an event's JSON starts as the envelope of `id` on `individual`.
fn envelope_prefix_ok(json: &str, id: &str, seq: u64) -> bool {
    json.starts_with(&format!(
        "{{\"id\":\"{id}\",\"seq\":{seq},\"account\":\"individual\""
    ))
}

/// An SSE reader that keeps up, checking that every seq comes once and in order.
async fn fast_sse(gw: &TestGateway, scan: &Arc<LeakScan>) -> Progress {
    let response = gw
        .http
        .get(format!("{}/v1/accounts/individual/events", gw.url))
        .send()
        .await
        .expect("fast SSE");
    assert_eq!(response.status(), 200);
    let (tx, rx) = watch::channel((0, None));
    let mut stream_scan = scan.stream("the fast SSE stream");
    tokio::spawn(async move {
        let mut events = response
            .bytes_stream()
            .inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    stream_scan.feed(chunk);
                }
            })
            .eventsource();
        let mut last: Option<u64> = None;
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    tx.send_replace((0, Some(format!("parse error {error}"))));
                    return;
                }
            };
            let (_, seq) = split_id(&event.id);
            let problem = match (last, event.event.as_str()) {
                (None, "snapshot") => None,
                (None, other) => Some(format!("first event {other}")),
                (Some(previous), _) if seq != previous + 1 => {
                    Some(format!("seq {seq} after {previous}"))
                }
                (Some(_), _) if !envelope_prefix_ok(&event.data, &event.id, seq) => {
                    Some(format!("bad envelope for {}", event.id))
                }
                _ => None,
            };
            if problem.is_some() {
                tx.send_replace((seq, problem));
                return;
            }
            last = Some(seq);
            tx.send_replace((seq, None));
        }
        tx.send_replace((
            last.unwrap_or_default(),
            Some("the fast stream ended".into()),
        ));
    });
    rx
}

/// A WebSocket reader that keeps up, checking that every seq comes once and in order.
async fn fast_ws(gw: &TestGateway, scan: &Arc<LeakScan>) -> Progress {
    let mut ws = ws::connect(&ws_url(&gw.url, ""), None).await;
    send_json(
        &mut ws,
        json!({"op": "subscribe", "accounts": ["individual"]}),
    )
    .await;
    assert_eq!(scanned_json(&mut ws, 5 * SECOND, scan).await["type"], "ack");
    let snapshot = scanned_json(&mut ws, 5 * SECOND, scan).await;
    let (tx, rx) = watch::channel((snapshot["seq"].as_u64().unwrap(), None));
    let scan = scan.clone();
    tokio::spawn(async move {
        let mut last = snapshot["seq"].as_u64().unwrap();
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    scan.scan("a fast WebSocket message", text.as_bytes());
                    let seq = last + 1;
                    let id = format!("{}-{seq}", snapshot["data"]["epoch"].as_str().unwrap());
                    if !envelope_prefix_ok(&text, &id, seq) {
                        tx.send_replace((last, Some(format!("expected {id}: {text:.120}"))));
                        return;
                    }
                    last = seq;
                    tx.send_replace((last, None));
                }
                Ok(Message::Ping(_) | Message::Pong(_)) => {}
                other => {
                    tx.send_replace((last, Some(format!("fast socket: {other:?}"))));
                    return;
                }
            }
        }
    });
    rx
}

/// Publishes `batches` batches of PER_BATCH padded orders (numbered from `first`), each once
/// every fast reader has the previous one; returns the per-batch delivery times and the last
/// seq.
async fn publish(
    gw: &TestGateway,
    fast: &mut [Progress],
    start_seq: u64,
    first: u64,
    batches: u64,
) -> (Vec<Duration>, u64) {
    let mut latencies = Vec::new();
    let mut target = start_seq;
    for batch in first..first + batches {
        let events: Vec<Value> = (0..PER_BATCH)
            .map(|i| json!({"type": "Order", "data": padded_order(700_000 + i, batch * PER_BATCH + i, PAD)}))
            .collect();
        let sent = Instant::now();
        gw.sim_post(
            &format!("/sim/accounts/{INDIVIDUAL}/events"),
            json!({"events": events, "batch": true}),
        )
        .await;
        target += PER_BATCH;
        for progress in fast.iter_mut() {
            let seen = tokio::time::timeout(
                BATCH_LIMIT,
                progress.wait_for(|(last, problem)| problem.is_some() || *last >= target),
            )
            .await
            .unwrap_or_else(|_| {
                panic!("batch {batch} did not reach a fast client within {BATCH_LIMIT:?}")
            })
            .expect("the fast reader runs")
            .clone();
            assert_eq!(
                seen,
                (target, None),
                "the fast client got batch {batch} exactly"
            );
        }
        latencies.push(sent.elapsed());
    }
    (latencies, target)
}

fn median(latencies: &[Duration]) -> Duration {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

/// The fast clients' delay with a stalled client around is the baseline's, give or take noise.
fn assert_no_added_delay(baseline: &[Duration], stalled: &[Duration]) {
    let (before, during) = (median(baseline), median(stalled));
    assert!(
        during <= before * 3 + Duration::from_millis(100),
        "a stalled client delays the others: median per batch {before:?} before, {during:?} while stalled"
    );
}

fn summary(latencies: &[Duration]) -> String {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    format!(
        "median {:?}, p90 {:?}, max {:?}",
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 9 / 10],
        sorted[sorted.len() - 1]
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sse_reader_is_cut_and_resumes_while_a_fast_one_gets_everything() {
    // Alone in the test process: the memory measured below is this test's.
    let gw = TestGateway::start_alone(&["--subscriber-queue", "64"]).await;
    let scan = LeakScan::new(&[]);
    let (_, snapshot) = gw.get("/v1/accounts/individual/snapshot").await;
    let mut fast = vec![fast_sse(&gw, &scan).await];
    let seq = snapshot["seq"].as_u64().unwrap();
    let (baseline, _) = publish(&gw, &mut fast, seq, 0, BASELINE).await;
    let rss_before = vm_rss_kib();
    let mut slow = RawHttp::get(
        gw.gateway.addr,
        "/v1/accounts/individual/events",
        &[],
        Some(4096),
        Some(&scan),
    )
    .await;
    let first = slow.read_frames(1, 5 * SECOND).await;
    let (epoch, start_seq) = split_id(first[0].id().unwrap());

    let started = Instant::now();
    let (latencies, last_seq) = publish(&gw, &mut fast, start_seq, BASELINE, BATCHES).await;
    eprintln!(
        "SSE: {} events of ~{PAD} B in {:?}; fast client per batch: {} (before the stall: {})",
        BATCHES * PER_BATCH,
        started.elapsed(),
        summary(&latencies),
        summary(&baseline)
    );
    assert_no_added_delay(&baseline, &latencies);

    // The stalled reader reads again: contiguous events, the comment, the end.
    slow.read_to_end(20 * SECOND).await;
    let frames = slow.frames();
    let (comment, events) = frames[1..].split_last().expect("frames after the snapshot");
    assert_eq!(
        comment.lines,
        vec![": slow consumer; reconnect with Last-Event-ID".to_string()],
        "the last frame says why the stream ends"
    );
    for (n, frame) in events.iter().enumerate() {
        let seq = start_seq + 1 + n as u64;
        assert_eq!(frame.id(), Some(format!("{epoch}-{seq}").as_str()));
        assert!(envelope_prefix_ok(
            frame.data().unwrap(),
            frame.id().unwrap(),
            seq
        ));
    }
    let cut_at = start_seq + events.len() as u64;
    assert!(cut_at < last_seq, "it was cut before the end");
    eprintln!(
        "SSE: the stalled reader had {} events ({} KiB) when cut at seq {cut_at} of {last_seq}",
        events.len(),
        slow.body.len() / 1024
    );

    // Resuming from its last id gives exactly the rest.
    assert_resume_gives_the_rest(gw.gateway.addr, &epoch, cut_at, last_seq, Some(&scan)).await;
    drop(slow);

    let rss_after = vm_rss_kib();
    eprintln!("SSE: VmRSS {rss_before} KiB -> {rss_after} KiB");
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
        "memory stays bounded: {rss_before} KiB -> {rss_after} KiB"
    );
    scan.assert_clean(1 << 20);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_websocket_is_closed_with_4008_and_resumes_while_a_fast_one_gets_everything() {
    // Alone in the test process: the memory measured below is this test's.
    let gw = TestGateway::start_alone(&["--subscriber-queue", "64"]).await;
    let scan = LeakScan::new(&[]);
    let (_, snapshot) = gw.get("/v1/accounts/individual/snapshot").await;
    let mut fast = vec![fast_ws(&gw, &scan).await, fast_sse(&gw, &scan).await];
    let seq = snapshot["seq"].as_u64().unwrap();
    let (baseline, _) = publish(&gw, &mut fast, seq, 0, BASELINE).await;
    let rss_before = vm_rss_kib();
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(gw.gateway.addr).await.unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async_with_config(
        ws_url(&gw.url, ""),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
        Some(WebSocketConfig::default().max_message_size(Some(16 << 20))),
    )
    .await
    .expect("slow WebSocket handshake");
    send_json(
        &mut slow,
        json!({"op": "subscribe", "accounts": ["individual"]}),
    )
    .await;
    assert_eq!(
        scanned_json(&mut slow, 5 * SECOND, &scan).await["type"],
        "ack"
    );
    let snapshot = scanned_json(&mut slow, 5 * SECOND, &scan).await;
    let start_seq = snapshot["seq"].as_u64().unwrap();
    let epoch = snapshot["data"]["epoch"].as_str().unwrap().to_string();

    let started = Instant::now();
    let (latencies, last_seq) = publish(&gw, &mut fast, start_seq, BASELINE, BATCHES).await;
    eprintln!(
        "WS: {} events in {:?}; fast clients per batch: {} (before the stall: {})",
        BATCHES * PER_BATCH,
        started.elapsed(),
        summary(&latencies),
        summary(&baseline)
    );
    assert_no_added_delay(&baseline, &latencies);

    // The stalled socket reads again: contiguous events, then the close with 4008.
    let deadline = Instant::now() + 20 * SECOND;
    let mut seq = start_seq;
    let close = loop {
        let next = tokio::time::timeout_at(deadline, slow.next())
            .await
            .expect("the slow socket is closed within 20 s");
        match next {
            Some(Ok(Message::Text(text))) => {
                scan.scan("a slow WebSocket message", text.as_bytes());
                seq += 1;
                assert!(
                    envelope_prefix_ok(&text, &format!("{epoch}-{seq}"), seq),
                    "contiguous before the close: expected seq {seq}, got {text:.100}"
                );
            }
            Some(Ok(Message::Close(frame))) => break frame.expect("a close code"),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected events then a close frame, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 4008);
    assert!(
        close.reason.starts_with("slow consumer"),
        "{}",
        close.reason
    );
    assert!(seq < last_seq, "it was cut before the end");
    eprintln!(
        "WS: the stalled socket had {} events when closed with 4008 ({}) at seq {seq} of {last_seq}",
        seq - start_seq,
        close.reason
    );

    // Resubscribing with the resume position gives exactly the rest.
    let mut resumed = ws::connect(&ws_url(&gw.url, ""), None).await;
    send_json(
        &mut resumed,
        json!({"op": "subscribe", "accounts": ["individual"], "resume": {"individual": format!("{epoch}-{seq}")}}),
    )
    .await;
    assert_eq!(
        scanned_json(&mut resumed, 5 * SECOND, &scan).await["type"],
        "ack"
    );
    for expected in seq + 1..=last_seq {
        let event = scanned_json(&mut resumed, 5 * SECOND, &scan).await;
        assert_eq!(event["seq"], json!(expected));
    }
    drop(slow);
    drop(resumed);

    let rss_after = vm_rss_kib();
    eprintln!("WS: VmRSS {rss_before} KiB -> {rss_after} KiB");
    assert!(
        rss_after.saturating_sub(rss_before) < RSS_GROWTH_LIMIT_KIB,
        "memory stays bounded: {rss_before} KiB -> {rss_after} KiB"
    );
    scan.assert_clean(1 << 20);
    gw.stop().await;
}
