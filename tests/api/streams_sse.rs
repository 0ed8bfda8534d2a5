//! SSE acceptance: snapshot(seq N) + the events after N equals the final snapshot and the
//! simulator's truth for random market seeds (per account and on `/v1/events`), and the
//! wire format is conformant: ids free of CR/LF/NUL, `retry:`, keep-alives when idle, the
//! headers, filters and resume parameters, and an EventSource parser reads every frame.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::helpers::gateway::{SseClient, TestGateway, apply, masked, same_snapshots, same_state};
use crate::helpers::streams::{
    LeakScan, RawHttp, parse_with_eventsource, split_combined, split_id, split_ordered,
};
use crate::helpers::{INDIVIDUAL, ROTH, SECOND, wait_until};
use serde_json::{Value, json};
use tokio::time::Instant;

const ACCOUNTS: [(&str, &str); 2] = [("individual", INDIVIDUAL), ("roth-ira", ROTH)];

/// The market seeds of this run: `TTGW_TEST_SEEDS=1,2,3` replays a run, else random ones.
fn seed(index: usize) -> u64 {
    let seed = match std::env::var("TTGW_TEST_SEEDS") {
        Ok(list) => list
            .split(',')
            .nth(index)
            .and_then(|s| s.trim().parse().ok())
            .expect("TTGW_TEST_SEEDS holds three comma-separated seeds"),
        Err(_) => rand::random::<u32>() as u64,
    };
    eprintln!("market seed #{index}: {seed} (replay with TTGW_TEST_SEEDS)");
    seed
}

/// Reads one account's stream from its start (`state` at `seq`) up to `to`: every seq
/// exactly once and in order. Returns the state rebuilt from the events.
async fn replay_one(
    sse: &mut SseClient,
    account: &str,
    mut state: Value,
    seq: u64,
    to: u64,
) -> Value {
    let mut expected = seq + 1;
    while expected <= to {
        let event = sse.next(5 * SECOND).await;
        let envelope = &event.data;
        assert_eq!(
            envelope["seq"],
            json!(expected),
            "{account}: seq {expected} next (no gap, no duplicate, in order), got {envelope}"
        );
        assert_eq!(envelope["account"], account);
        assert_eq!(event.event, envelope["type"].as_str().unwrap());
        assert_eq!(
            split_id(&event.id).1,
            expected,
            "the SSE id carries the seq"
        );
        assert_eq!(
            envelope["id"],
            json!(event.id),
            "the envelope id is the SSE id"
        );
        apply(&mut state, envelope);
        expected += 1;
    }
    state
}

/// Reads `/v1/events` from its start up to `to[account]` for every account: per account,
/// every seq exactly once and in order; the combined id always holds every position.
async fn replay_all(
    sse: &mut SseClient,
    mut states: BTreeMap<String, (Value, u64)>,
    to: &BTreeMap<String, u64>,
    epoch: &str,
) -> BTreeMap<String, Value> {
    while states.iter().any(|(id, (_, seq))| *seq < to[id]) {
        let event = sse.next(5 * SECOND).await;
        let envelope = &event.data;
        let account = envelope["account"].as_str().unwrap().to_string();
        let (state, seq) = states.get_mut(&account).expect("a known account");
        assert_eq!(
            envelope["seq"],
            json!(*seq + 1),
            "{account}: seq {} next on /v1/events, got {envelope}",
            *seq + 1
        );
        *seq += 1;
        if *seq <= to[&account] {
            // Past the settled seq only events that change no state may follow.
            apply(state, envelope);
        }
        let (id_epoch, pairs) = split_combined(&event.id);
        assert_eq!(id_epoch, epoch);
        let positions: BTreeMap<String, u64> = pairs.into_iter().collect();
        let expected: BTreeMap<String, u64> =
            states.iter().map(|(id, (_, s))| (id.clone(), *s)).collect();
        assert_eq!(positions, expected, "the combined id holds every position");
    }
    states.into_iter().map(|(id, (s, _))| (id, s)).collect()
}

/// The first frames of `/v1/events`: one snapshot per account.
async fn snapshots_of_all(sse: &mut SseClient) -> (String, BTreeMap<String, (Value, u64)>) {
    let mut states = BTreeMap::new();
    let mut epoch = String::new();
    for delivered in 1..=2 {
        let event = sse.next(5 * SECOND).await;
        assert_eq!(event.event, "snapshot");
        let account = event.data["account"].as_str().unwrap().to_string();
        let seq = event.data["seq"].as_u64().unwrap();
        let (id_epoch, pairs) = split_combined(&event.id);
        assert!(pairs.contains(&(account.clone(), seq)), "{}", event.id);
        assert_eq!(
            pairs.len(),
            delivered,
            "an id names only the accounts whose snapshot was sent: {}",
            event.id
        );
        epoch = id_epoch;
        states.insert(account, (event.data.clone(), seq));
    }
    assert_eq!(
        states.keys().cloned().collect::<Vec<_>>(),
        vec!["individual", "roth-ira"]
    );
    (epoch, states)
}

/// Waits until the gateway's snapshot of `id` equals the simulator's truth; returns both as
/// they matched (the script may still publish events that change no state, so later reads
/// could be further on).
async fn settle(gw: &TestGateway, id: &str, number: &str) -> (Value, Value) {
    let deadline = Instant::now() + 10 * SECOND;
    loop {
        let truth = masked(&gw.sim_get(&format!("/sim/accounts/{number}/truth")).await);
        let (_, snapshot) = gw.get(&format!("/v1/accounts/{id}/snapshot")).await;
        match same_state(&snapshot, &truth) {
            Ok(()) => return (snapshot, truth),
            Err(difference) => assert!(
                Instant::now() < deadline,
                "{id} never equalled the simulator's truth: {difference}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn consistency(seed: u64) {
    let gw = TestGateway::start(&["--sim-seed", &seed.to_string()]).await;
    let mut early = Vec::new();
    for (id, _) in ACCOUNTS {
        let mut sse = gw.sse(&format!("/v1/accounts/{id}/events"), None).await;
        let first = sse.next(5 * SECOND).await;
        assert_eq!(first.event, "snapshot");
        early.push((id, sse, first.data.clone()));
    }
    let mut all_early = gw.sse("/v1/events", None).await;
    let (epoch, all_early_states) = snapshots_of_all(&mut all_early).await;

    let seq_of = |body: &Value, id: &str| {
        body["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .and_then(|a| a["seq"].as_u64())
            .unwrap()
    };
    let (_, before) = gw.get("/v1/accounts").await;
    gw.sim_post("/sim/script", json!({"paused": false, "rate": 150}))
        .await;
    // Late subscribers join while the script runs: their snapshot is taken mid-flight.
    wait_until("the script to start moving", 10 * SECOND, || async {
        let (_, now) = gw.get("/v1/accounts").await;
        ACCOUNTS
            .iter()
            .all(|(id, _)| seq_of(&now, id) >= seq_of(&before, id) + 5)
    })
    .await;
    let mut late = Vec::new();
    for (id, _) in ACCOUNTS {
        let mut sse = gw.sse(&format!("/v1/accounts/{id}/events"), None).await;
        let first = sse.next(5 * SECOND).await;
        assert_eq!(first.event, "snapshot");
        late.push((id, sse, first.data.clone()));
    }
    let mut all_late = gw.sse("/v1/events", None).await;
    let (_, all_late_states) = snapshots_of_all(&mut all_late).await;
    wait_until("30 more events per account", 20 * SECOND, || async {
        let (_, now) = gw.get("/v1/accounts").await;
        ACCOUNTS
            .iter()
            .all(|(id, _)| seq_of(&now, id) >= seq_of(&before, id) + 40)
    })
    .await;
    gw.sim_post("/sim/script", json!({"paused": true})).await;

    let mut finals = BTreeMap::new();
    let mut truths = BTreeMap::new();
    for (id, number) in ACCOUNTS {
        let (snapshot, truth) = settle(&gw, id, number).await;
        truths.insert(id.to_string(), truth);
        finals.insert(id.to_string(), snapshot);
    }
    let to: BTreeMap<String, u64> = finals
        .iter()
        .map(|(id, s)| (id.clone(), s["seq"].as_u64().unwrap()))
        .collect();

    for (id, mut sse, start) in early.into_iter().chain(late) {
        let seq = start["seq"].as_u64().unwrap();
        let rebuilt = replay_one(&mut sse, id, start, seq, to[id]).await;
        same_snapshots(&rebuilt, &finals[id])
            .unwrap_or_else(|d| panic!("seed {seed}, {id} from seq {seq}: {d}"));
        same_state(&rebuilt, &truths[id])
            .unwrap_or_else(|d| panic!("seed {seed}, {id} from seq {seq} vs truth: {d}"));
    }
    for (mut sse, states) in [(all_early, all_early_states), (all_late, all_late_states)] {
        let starts: Vec<u64> = states.values().map(|(_, s)| *s).collect();
        let rebuilt = replay_all(&mut sse, states, &to, &epoch).await;
        for (id, state) in &rebuilt {
            same_snapshots(state, &finals[id])
                .unwrap_or_else(|d| panic!("seed {seed}, /v1/events from {starts:?}, {id}: {d}"));
            same_state(state, &truths[id]).unwrap_or_else(|d| {
                panic!("seed {seed}, /v1/events from {starts:?}, {id} vs truth: {d}")
            });
        }
    }
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_plus_events_equals_final_snapshot_and_truth_seed_1() {
    consistency(seed(0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_plus_events_equals_final_snapshot_and_truth_seed_2() {
    consistency(seed(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_plus_events_equals_final_snapshot_and_truth_seed_3() {
    consistency(seed(2)).await;
}

/// Every line of an SSE body is a field we send or a comment; no CR, no NUL anywhere.
fn assert_wire_clean(body: &str) {
    assert!(!body.contains('\r'), "no CR in the stream");
    assert!(!body.contains('\0'), "no NUL in the stream");
    for frame in body.split("\n\n").filter(|f| !f.is_empty()) {
        let mut seen = Vec::new();
        for line in frame.split('\n') {
            let field = if line.starts_with(':') {
                ":"
            } else {
                ["id: ", "event: ", "data: ", "retry: "]
                    .into_iter()
                    .find(|p| line.starts_with(p))
                    .unwrap_or_else(|| panic!("unexpected line {line:?} in frame {frame:?}"))
            };
            if field != ":" {
                assert!(!seen.contains(&field), "one {field:?} per frame: {frame:?}");
                seen.push(field);
            }
        }
    }
}

/// Over compact ids (`--compact-ids-above 0`) the starting snapshots come without ids, the
/// last one with `<epoch>-~<place>~<digest>`. Resumed from it, the same accounts replay
/// from the place (nothing here: the market is paused); a place whose digest names another
/// set of accounts (a key with other scopes, an account added) cannot say what the client
/// holds, so every account gets a reset, never a replay from a place it may not have had.
#[tokio::test]
async fn a_compact_id_resumes_its_own_accounts_and_resets_another_set() {
    let gw = TestGateway::start(&["--compact-ids-above", "0"]).await;
    let mut first = gw.sse("/v1/events", None).await;
    let opening = first.next(5 * SECOND).await;
    assert_eq!(
        (opening.event.as_str(), opening.id.as_str()),
        ("snapshot", "")
    );
    let last = first.next(5 * SECOND).await;
    assert_eq!(last.event, "snapshot");
    let (_, place, named) = split_ordered(&last.id)
        .unwrap_or_else(|| panic!("the last snapshot carries a compact id: {:?}", last.id));
    assert!(
        named.is_empty(),
        "every account at the place {place}: {}",
        last.id
    );
    drop(first);

    let mut same = gw.sse("/v1/events", Some(&last.id)).await;
    assert_eq!(same.status, 200);
    if let Some(frame) = same.try_next(SECOND).await {
        panic!(
            "nothing was missed, yet {} came: {:?}",
            frame.event, frame.data
        );
    }
    drop(same);

    let (head, _) = last.id.rsplit_once('~').expect("a digest");
    let other = format!("{head}~0000000000000000");
    let mut resumed = gw.sse("/v1/events", Some(&other)).await;
    let mut reset = Vec::new();
    while let Some(frame) = resumed.try_next(2 * SECOND).await {
        assert_eq!(frame.event, "reset", "{frame:?}");
        reset.push(frame.data["account"].as_str().unwrap().to_string());
    }
    reset.sort();
    assert_eq!(reset, ["individual", "roth-ira"]);
    gw.stop().await;
}

/// An old-format id resumed on a compact stream: the account it names at an older position
/// replays what it missed, and every id written meanwhile names that account where it is,
/// so a client cut among those events resumes it exactly; once its replay is done the ids
/// are compact again.
#[tokio::test]
async fn a_named_account_stays_named_in_every_id_until_its_replay_is_done() {
    let gw = TestGateway::start(&["--compact-ids-above", "0"]).await;
    let seq_of = |accounts: &Value, id: &str| {
        let list = accounts["accounts"].as_array().expect("accounts");
        let account = list.iter().find(|a| a["id"] == id).expect("the account");
        account["seq"].as_u64().expect("a seq")
    };
    let (_, before) = gw.get("/v1/accounts").await;
    let from = seq_of(&before, "individual");
    gw.sim_post("/sim/script", json!({"paused": false, "rate": 150}))
        .await;
    wait_until("individual moved on by 5 events", 10 * SECOND, || async {
        seq_of(&gw.get("/v1/accounts").await.1, "individual") >= from + 5
    })
    .await;
    gw.sim_post("/sim/script", json!({"paused": true})).await;
    let individual = gw.converge("individual", INDIVIDUAL, 10 * SECOND).await;
    let roth = gw.converge("roth-ira", ROTH, 10 * SECOND).await;
    let epoch = individual["epoch"].as_str().expect("an epoch");
    let old = format!("{epoch}-individual.{from}.roth-ira.{}", roth["seq"]);
    let mut resumed = gw.sse("/v1/events", Some(&old)).await;
    let mut replayed = Vec::new();
    while let Some(frame) = resumed.try_next(SECOND).await {
        assert!(
            frame.event != "snapshot" && frame.event != "reset",
            "{frame:?}"
        );
        if frame.data["account"] == "individual" {
            replayed.push((frame.data["seq"].as_u64().expect("a seq"), frame.id));
        }
    }
    let seqs: Vec<u64> = replayed.iter().map(|(seq, _)| *seq).collect();
    let expected: Vec<u64> = (from + 1..=from + seqs.len() as u64).collect();
    assert!(
        seqs.len() >= 5 && seqs == expected,
        "replayed {seqs:?} after {from}"
    );
    for (seq, id) in &replayed[..replayed.len() - 1] {
        let (_, _, named) = split_ordered(id).unwrap_or_else(|| panic!("a compact id: {id}"));
        assert!(
            named.contains(&("individual".to_string(), *seq)),
            "individual at {seq} of {seqs:?}, its replay not done, must be named: {id}"
        );
    }
    gw.stop().await;
}

/// A `/v1/events` client that drops after the first snapshot frame resumes with that frame's
/// id: the account it holds resumes, and the other one gets the snapshot it never had.
#[tokio::test]
async fn a_drop_between_the_starting_snapshots_loses_no_account() {
    let gw = TestGateway::start(&[]).await;
    let mut first = gw.sse("/v1/events", None).await;
    let frame = first.next(5 * SECOND).await;
    assert_eq!(frame.event, "snapshot");
    let held = frame.data["account"].as_str().unwrap().to_string();
    drop(first);
    let mut resumed = gw.sse("/v1/events", Some(&frame.id)).await;
    let mut snapshots = Vec::new();
    while let Some(event) = resumed.try_next(2 * SECOND).await {
        if event.event == "snapshot" || event.event == "reset" {
            snapshots.push(event.data["account"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        snapshots.len(),
        1,
        "exactly the account not held starts again: {snapshots:?}"
    );
    assert_ne!(
        snapshots[0], held,
        "the held account resumes; the other gets its snapshot"
    );
    gw.stop().await;
}

#[tokio::test]
async fn ids_and_event_names_never_hold_cr_lf_or_nul_and_eventsource_parses_every_frame() {
    let gw = TestGateway::start(&[]).await;
    let scan = LeakScan::new(&[]);
    let mut one = RawHttp::get(
        gw.gateway.addr,
        "/v1/accounts/individual/events",
        &[],
        None,
        Some(&scan),
    )
    .await;
    let mut all = RawHttp::get(gw.gateway.addr, "/v1/events", &[], None, Some(&scan)).await;
    let first = one.read_frames(1, 5 * SECOND).await;
    let (epoch, seq) = split_id(first[0].id().unwrap());
    all.read_frames(2, 5 * SECOND).await;

    // A raw upstream frame whose type tries to break out of the `event:` line, and data with
    // line breaks, NUL and U+2028 in strings.
    let evil_type = "Evil\r\nid: 1\n\nevent: Order\u{0}x";
    let note = "line1\r\nline2\n\nid: 9\u{0}\u{2028}end";
    let raw = json!({
        "type": evil_type,
        "data": {"id": 1, "note": note, "account-number": INDIVIDUAL},
        "timestamp": 1_791_036_000_000_i64,
    })
    .to_string();
    gw.sim_post(
        &format!("/sim/accounts/{INDIVIDUAL}/events"),
        json!({"raw": raw}),
    )
    .await;
    let order =
        json!({"id": 551001, "status": "Live", "updated-at": 4_102_444_800_000_i64, "note": note});
    gw.inject(INDIVIDUAL, "Order", order.clone()).await;

    let frames = one.read_frames(3, 5 * SECOND).await;
    let evil = &frames[1];
    assert_eq!(evil.id(), Some(format!("{epoch}-{}", seq + 1).as_str()));
    assert_eq!(evil.event(), Some("Evil__id__1__event__Order_x"));
    let envelope = evil.json();
    assert_eq!(envelope["type"], "Evil__id__1__event__Order_x");
    assert_eq!(envelope["data"]["note"], note, "strings survive, escaped");
    assert_eq!(envelope["data"]["account-number"], "***1842");
    let order_frame = &frames[2];
    assert_eq!(
        order_frame.id(),
        Some(format!("{epoch}-{}", seq + 2).as_str())
    );
    assert_eq!(order_frame.event(), Some("Order"));
    assert_eq!(order_frame.json()["data"]["note"], note);

    let all_frames = all.read_frames(4, 5 * SECOND).await;
    for frame in &all_frames[2..] {
        let id = frame.id().unwrap();
        let (_, pairs) = split_combined(id);
        assert_eq!(pairs.len(), 2, "{id}");
    }
    assert_eq!(all_frames[2].event(), Some("Evil__id__1__event__Order_x"));

    for raw in [&one, &all] {
        let body = raw.text();
        assert!(body.starts_with("retry: 2000\n"), "retry first: {body:.80}");
        assert_wire_clean(&body);
        // What an EventSource would see: every frame, the same ids, names and data.
        let parsed = parse_with_eventsource(&raw.body).await;
        let frames = raw.frames();
        assert_eq!(parsed.len(), frames.len());
        for (event, frame) in parsed.iter().zip(&frames) {
            assert_eq!(Some(event.id.as_str()), frame.id());
            assert_eq!(Some(event.event.as_str()), frame.event());
            assert_eq!(Some(event.data.as_str()), frame.data());
            for bad in ['\r', '\n', '\0'] {
                assert!(!event.id.contains(bad) && !event.event.contains(bad));
            }
        }
        assert_eq!(parsed[0].retry, Some(Duration::from_millis(2000)));
    }
    scan.assert_clean(1000);
    gw.stop().await;
}

#[tokio::test]
async fn retry_headers_and_a_keepalive_comment_when_idle() {
    let gw = TestGateway::start(&["--sse-keepalive-secs", "1"]).await;
    let scan = LeakScan::new(&[]);
    for path in ["/v1/accounts/roth-ira/events", "/v1/events"] {
        let mut raw = RawHttp::get(gw.gateway.addr, path, &[], None, Some(&scan)).await;
        assert_eq!(raw.head.status, 200);
        assert_eq!(raw.head.header("content-type"), Some("text/event-stream"));
        assert_eq!(raw.head.header("cache-control"), Some("no-cache"));
        assert_eq!(raw.head.header("x-accel-buffering"), Some("no"));
        scan.scan("response head", raw.head.raw.as_bytes());
        let snapshots = if path == "/v1/events" { 2 } else { 1 };
        let frames = raw.read_frames(snapshots, 5 * SECOND).await;
        let started = Instant::now();
        assert_eq!(frames[0].retry(), Some("2000"), "retry on the first frame");
        assert!(frames.iter().all(|f| f.event() == Some("snapshot")));
        // Idle: a `:` comment after about a second, then again.
        let frames = raw.read_frames(snapshots + 1, 4 * SECOND).await;
        let first_gap = started.elapsed();
        assert_eq!(frames[snapshots].lines, vec![":".to_string()]);
        assert!(
            first_gap >= Duration::from_millis(800) && first_gap <= Duration::from_millis(2500),
            "keep-alive after ~1 s of silence, came after {first_gap:?}"
        );
        let frames = raw.read_frames(snapshots + 2, 4 * SECOND).await;
        assert_eq!(frames[snapshots + 1].lines, vec![":".to_string()]);
        assert_wire_clean(&raw.text());
    }
    scan.assert_clean(500);
    gw.stop().await;
}

#[tokio::test]
async fn keepalive_still_comes_while_only_filtered_out_events_flow() {
    let gw = TestGateway::start(&["--sse-keepalive-secs", "1"]).await;
    let scan = LeakScan::new(&[]);
    let mut raw = RawHttp::get(
        gw.gateway.addr,
        "/v1/accounts/individual/events?types=AccountBalance",
        &[],
        None,
        Some(&scan),
    )
    .await;
    raw.read_frames(1, 5 * SECOND).await;
    let started = Instant::now();
    // Orders every 200 ms for 3 s: the stream is busy upstream but silent on the wire.
    let http = gw.http.clone();
    let sim = gw.sim_url.clone();
    let orders = tokio::spawn(async move {
        for n in 0..15u64 {
            let order = json!({"id": 560000 + n, "status": "Live", "updated-at": 4_102_444_800_000_i64 + n as i64});
            http.post(format!("{sim}/sim/accounts/{INDIVIDUAL}/events"))
                .json(&json!({"type": "Order", "data": order}))
                .send()
                .await
                .expect("inject");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let frames = raw.read_frames(2, 4 * SECOND).await;
    let gap = started.elapsed();
    assert_eq!(
        frames[1].lines,
        vec![":".to_string()],
        "only a keep-alive may come: the orders are filtered out"
    );
    assert!(
        gap <= Duration::from_millis(2500),
        "a keep-alive within ~1 s of wire silence, came after {gap:?}"
    );
    orders.await.unwrap();
    scan.assert_clean(100);
    gw.stop().await;
}

#[tokio::test]
async fn types_filter_and_resume_from_the_query_parameter() {
    let gw = TestGateway::start(&[]).await;
    let mut filtered = gw
        .sse(
            "/v1/accounts/individual/events?types=AccountBalance,TradingStatus",
            None,
        )
        .await;
    let snapshot = filtered.next(5 * SECOND).await;
    assert_eq!(snapshot.event, "snapshot");
    let seq = snapshot.data["seq"].as_u64().unwrap();
    let epoch = snapshot.data["epoch"].as_str().unwrap().to_string();
    let order = json!({"id": 552001, "status": "Live", "updated-at": 4_102_444_800_000_i64});
    gw.inject(INDIVIDUAL, "Order", order).await;
    let mut balance = snapshot.data["balance"].clone();
    balance["account-number"] = json!(INDIVIDUAL);
    balance["cash-balance"] = json!("12345.67");
    balance["updated-at"] = json!("2099-01-01T00:00:00.000+00:00");
    gw.inject(INDIVIDUAL, "AccountBalance", balance.clone())
        .await;
    let event = filtered.next(5 * SECOND).await;
    assert_eq!(event.event, "AccountBalance");
    assert_eq!(
        event.data["seq"],
        json!(seq + 2),
        "the order (seq+1) is filtered out"
    );
    assert_eq!(event.id, format!("{epoch}-{}", seq + 2));

    // Resume with `last_event_id=` (clients that cannot send the header): exactly the rest.
    let mut resumed = gw
        .sse(
            &format!("/v1/accounts/individual/events?last_event_id={epoch}-{seq}"),
            None,
        )
        .await;
    let a = resumed.next(5 * SECOND).await;
    let b = resumed.next(5 * SECOND).await;
    assert_eq!(
        (a.event.as_str(), b.event.as_str()),
        ("Order", "AccountBalance")
    );
    assert_eq!(
        (a.data["seq"].clone(), b.data["seq"].clone()),
        (json!(seq + 1), json!(seq + 2))
    );
    // The header wins over the query parameter when both are given.
    let mut both = gw
        .sse(
            &format!(
                "/v1/accounts/individual/events?last_event_id={epoch}-{}",
                seq + 2
            ),
            Some(&format!("{epoch}-{}", seq + 1)),
        )
        .await;
    assert_eq!(both.next(5 * SECOND).await.data["seq"], json!(seq + 2));
    // A filtered resume on /v1/events carries only the wanted types.
    let mut all = gw
        .sse(
            &format!("/v1/events?types=Order&last_event_id={epoch}-individual.{seq}.roth-ira.0"),
            None,
        )
        .await;
    let first = all.next(5 * SECOND).await;
    assert_eq!(
        first.event, "Order",
        "individual resumes, roth-ira is behind"
    );
    assert_eq!(first.data["account"], "individual");
    assert_eq!(first.data["seq"], json!(seq + 1));
    let rest = all.drain(Duration::from_millis(300)).await;
    assert!(
        rest.iter().all(|e| e.event == "Order"),
        "only orders: {:?}",
        rest.iter().map(|e| &e.event).collect::<Vec<_>>()
    );
    drop((filtered, resumed, both, all));
    gw.assert_no_leaks();
    gw.stop().await;
}
