//! The thin end-to-end path over real sockets: simulator -> upstream client -> account state
//! -> REST and SSE, in demo mode. Covers the account list, snapshots, live and injected
//! events, masking, resume, resync after a gap, and equality with the simulator's truth.

use std::time::Duration;

use crate::helpers::gateway::{SseEvent, TestGateway, apply, masked, same_state};
use crate::helpers::{INDIVIDUAL, SECOND, wait_until};
use serde_json::{Value, json};

#[tokio::test]
async fn accounts_are_listed_by_public_id_with_masked_numbers() {
    let gw = TestGateway::start(&[]).await;
    let (status, body) = gw.get("/v1/accounts").await;
    assert_eq!(status, 200);
    let accounts = body["accounts"].as_array().unwrap();
    let summary: Vec<(String, String, String, String)> = accounts
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().into(),
                a["account_number"].as_str().unwrap().into(),
                a["nickname"].as_str().unwrap().into(),
                a["account_type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "individual".into(),
                "***1842".into(),
                "Individual".into(),
                "Individual".into()
            ),
            (
                "roth-ira".into(),
                "***9822".into(),
                "Roth IRA".into(),
                "Roth IRA".into()
            ),
        ],
        "the two open accounts, not the closed one"
    );
    for account in accounts {
        assert_eq!(account["upstream"]["state"], "live");
        assert_eq!(account["upstream"]["reconnects"], 0);
        assert!(
            account["seq"].as_u64().unwrap() >= 1,
            "the first baseline is published as resync events"
        );
    }
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn unknown_account_is_a_404_that_does_not_echo_the_id() {
    let gw = TestGateway::start(&[]).await;
    for path in [
        format!("/v1/accounts/{INDIVIDUAL}/snapshot"),
        format!("/v1/accounts/{INDIVIDUAL}/events"),
        "/v1/accounts/nope/snapshot".into(),
    ] {
        let (status, body) = gw.get(&path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], "unknown_account", "{path}");
        assert_eq!(
            body["error"]["message"],
            "no account with that id; GET /v1/accounts lists them"
        );
    }
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn injected_event_reaches_an_sse_subscriber_masked_with_unknown_fields_kept() {
    let gw = TestGateway::start(&[]).await;
    let mut sse = gw.sse("/v1/accounts/individual/events", None).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.headers["content-type"], "text/event-stream");
    assert_eq!(sse.headers["cache-control"], "no-cache");
    assert_eq!(sse.headers["x-accel-buffering"], "no");
    let snapshot = sse.next(5 * SECOND).await;
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(
        *sse.retry.lock().unwrap(),
        Some(Duration::from_millis(2000))
    );
    let epoch = snapshot.data["epoch"].as_str().unwrap().to_string();
    let seq = snapshot.data["seq"].as_u64().unwrap();
    assert_eq!(snapshot.id, format!("{epoch}-{seq}"));
    assert_eq!(snapshot.data["account"], "individual");

    let order = json!({
        "id": 777001, "account-number": INDIVIDUAL, "status": "Live", "size": 3, "price": "4337.831401355",
        "price-effect": "Debit", "updated-at": 4_102_444_800_000_i64, "user-id": "99",
        "future-field": {"note": format!("moved from {INDIVIDUAL}"), "n": 1},
        "legs": [{"instrument-type": "Equity", "symbol": "AAPL", "action": "Buy to Open", "quantity": 3, "remaining-quantity": 3, "fills": []}],
    });
    gw.sim_post(
        &format!("/sim/accounts/{INDIVIDUAL}/events"),
        json!({"type": "Order", "data": order}),
    )
    .await;

    let event: SseEvent = sse.next(5 * SECOND).await;
    assert_eq!(event.event, "Order");
    assert_eq!(event.id, format!("{epoch}-{}", seq + 1));
    let envelope = &event.data;
    assert_eq!(envelope["id"], json!(format!("{epoch}-{}", seq + 1)));
    assert_eq!(envelope["seq"], json!(seq + 1));
    assert_eq!(envelope["account"], "individual");
    assert_eq!(envelope["type"], "Order");
    assert_eq!(envelope["source"], "stream");
    assert!(envelope["timestamp"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(envelope["received_at"].as_str().is_some());
    let mut expected = order.clone();
    expected["account-number"] = json!("***1842");
    expected["future-field"]["note"] = json!("moved from ***1842");
    assert_eq!(envelope["data"], expected);

    let (status, body) = gw.get("/v1/accounts/individual/snapshot").await;
    assert_eq!(status, 200);
    assert_eq!(body["seq"], json!(seq + 1));
    let held = body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == 777001)
        .cloned();
    assert_eq!(held, Some(expected));
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn market_script_events_arrive_within_ten_seconds() {
    let gw = TestGateway::start(&["--sim-rate", "2"]).await;
    let mut sse = gw.sse("/v1/accounts/individual/events", None).await;
    assert_eq!(sse.next(5 * SECOND).await.event, "snapshot");
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    let live = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = sse.next(left).await;
        if event.data["source"] == "stream" {
            break event;
        }
    };
    assert_eq!(live.data["account"], "individual");
    assert_eq!(live.data["data"]["account-number"], "***1842");
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn resume_gives_exactly_the_missed_events_and_a_stale_epoch_gets_reset() {
    let gw = TestGateway::start(&[]).await;
    let mut first = gw.sse("/v1/accounts/individual/events", None).await;
    let snapshot = first.next(5 * SECOND).await;
    drop(first);
    let seq = snapshot.data["seq"].as_u64().unwrap();
    for n in 0..3 {
        let order =
            json!({"id": 880000 + n, "status": "Live", "updated-at": 4_102_444_800_000_i64 + n});
        gw.sim_post(
            &format!("/sim/accounts/{INDIVIDUAL}/events"),
            json!({"type": "Order", "data": order}),
        )
        .await;
    }
    wait_until("three events journaled", 5 * SECOND, || async {
        gw.get("/v1/accounts/individual/snapshot").await.1["seq"] == json!(seq + 3)
    })
    .await;

    let mut resumed = gw
        .sse("/v1/accounts/individual/events", Some(&snapshot.id))
        .await;
    let events = [
        resumed.next(5 * SECOND).await,
        resumed.next(5 * SECOND).await,
        resumed.next(5 * SECOND).await,
    ];
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e.data["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, vec![seq + 1, seq + 2, seq + 3]);
    let ids: Vec<Value> = events
        .iter()
        .map(|e| e.data["data"]["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!(880000), json!(880001), json!(880002)]);
    assert!(
        resumed.drain(Duration::from_millis(300)).await.is_empty(),
        "nothing after the missed events"
    );

    let mut stale = gw
        .sse(
            "/v1/accounts/individual/events?last_event_id=oldepoch-3",
            None,
        )
        .await;
    let reset = stale.next(5 * SECOND).await;
    assert_eq!(reset.event, "reset");
    assert_eq!(reset.data["seq"], json!(seq + 3));
    drop((resumed, stale));
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn changes_made_during_a_gap_are_published_as_resync_events() {
    let gw = TestGateway::start(&[]).await;
    let mut sse = gw.sse("/v1/accounts/individual/events", None).await;
    assert_eq!(sse.next(5 * SECOND).await.event, "snapshot");

    // The simulator keeps acking but delivers nothing: the change is made upstream unseen.
    gw.sim_post("/sim/faults/silent", json!({"enabled": true}))
        .await;
    let order = json!({"id": 990001, "status": "Filled", "updated-at": 4_102_444_800_000_i64});
    gw.sim_post(
        &format!("/sim/accounts/{INDIVIDUAL}/events"),
        json!({"type": "Order", "data": order}),
    )
    .await;
    let closed = json!({"symbol": "AAPL", "instrument-type": "Equity", "quantity": "0", "quantity-direction": "Zero"});
    gw.sim_post(
        &format!("/sim/accounts/{INDIVIDUAL}/events"),
        json!({"type": "CurrentPosition", "data": closed}),
    )
    .await;
    assert!(
        sse.drain(Duration::from_millis(300)).await.is_empty(),
        "silent stream delivers nothing"
    );

    // The socket dies; the gateway reconnects and re-reads REST.
    http_delete(&gw, "/sim/faults").await;
    gw.sim_post("/sim/faults/drop", json!({})).await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = sse.next(10 * SECOND).await;
        if event.data["source"] == "resync" {
            seen.push(event);
        }
    }
    let order_event = seen
        .iter()
        .find(|e| e.event == "Order")
        .expect("the missed order");
    assert_eq!(order_event.data["data"]["id"], 990001);
    assert_eq!(order_event.data["data"]["status"], "Filled");
    let position_event = seen
        .iter()
        .find(|e| e.event == "CurrentPosition")
        .expect("the closed position");
    assert_eq!(position_event.data["data"]["symbol"], "AAPL");
    assert_eq!(position_event.data["data"]["quantity-direction"], "Zero");

    let (_, accounts) = gw.get("/v1/accounts").await;
    assert_eq!(accounts["accounts"][0]["upstream"]["reconnects"], 1);
    let truth = gw
        .sim_get(&format!("/sim/accounts/{INDIVIDUAL}/truth"))
        .await;
    let (_, snapshot) = gw.get("/v1/accounts/individual/snapshot").await;
    same_state(&snapshot, &masked(&truth)).unwrap();
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

async fn http_delete(gw: &TestGateway, path: &str) {
    let status = gw
        .http
        .delete(format!("{}{path}", gw.sim_url))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success());
}

#[tokio::test]
async fn snapshot_plus_events_equals_the_final_snapshot_and_the_simulators_truth() {
    let gw = TestGateway::start(&["--sim-seed", "7"]).await;
    let mut sse = gw.sse("/v1/accounts/individual/events", None).await;
    let first = sse.next(5 * SECOND).await;
    assert_eq!(first.event, "snapshot");
    let start_seq = first.data["seq"].as_u64().unwrap();

    gw.sim_post("/sim/script", json!({"paused": false, "rate": 60}))
        .await;
    wait_until(
        "the market script to move the account",
        20 * SECOND,
        || async {
            gw.get("/v1/accounts/individual/snapshot").await.1["seq"]
                .as_u64()
                .unwrap()
                >= start_seq + 40
        },
    )
    .await;
    gw.sim_post("/sim/script", json!({"paused": true})).await;

    let truth = masked(
        &gw.sim_get(&format!("/sim/accounts/{INDIVIDUAL}/truth"))
            .await,
    );
    let deadline = tokio::time::Instant::now() + 10 * SECOND;
    let final_snapshot = loop {
        let (_, snapshot) = gw.get("/v1/accounts/individual/snapshot").await;
        match same_state(&snapshot, &truth) {
            Ok(()) => break snapshot,
            Err(difference) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the gateway never equalled the simulator's truth: {difference}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let final_seq = final_snapshot["seq"].as_u64().unwrap();

    let mut replayed = first.data.clone();
    let mut expected_seq = start_seq + 1;
    while expected_seq <= final_seq {
        let event = sse.next(5 * SECOND).await;
        assert_eq!(
            event.data["seq"].as_u64().unwrap(),
            expected_seq,
            "no gap, no duplicate, in order"
        );
        apply(&mut replayed, &event.data);
        expected_seq += 1;
    }
    same_state(&replayed, &truth).unwrap();
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn openapi_json_in_the_repo_matches_the_code() {
    let generated = serde_json::to_value(tastytrade_gateway::api::openapi()).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let checked_in: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("openapi/openapi.json exists"))
            .unwrap();
    assert!(
        generated == checked_in,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}
