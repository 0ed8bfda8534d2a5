//! WebSocket protocol acceptance (`/v1/ws`): acks, snapshots, events byte-identical to the
//! SSE `data:` lines, the `types` filter, resume, ping/pong, unsubscribe; malformed, unknown
//! and binary messages get `error` messages and the socket stays usable; unknown accounts get
//! `unknown_account`; shutdown closes with 1001.

use std::time::Duration;

use crate::helpers::gateway::TestGateway;
use crate::helpers::streams::{LeakScan, RawHttp, split_id};
use crate::helpers::ws::{
    self, Ws, assert_quiet, scanned_close, scanned_json, scanned_text, send_json, ws_url,
};
use crate::helpers::{INDIVIDUAL, SECOND};
use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const BAD_MESSAGE: &str = "expected a JSON object with \"op\": \"subscribe\", \"unsubscribe\", \"ping\" or \"refresh\" (see /docs)";

async fn open(gw: &TestGateway) -> Ws {
    ws::connect(&ws_url(&gw.url, ""), None).await
}

#[tokio::test]
async fn malformed_unknown_and_binary_messages_get_errors_and_the_socket_stays() {
    let gw = TestGateway::start(&[]).await;
    let scan = LeakScan::new(&[]);
    let mut ws = open(&gw).await;
    let bad = json!({"type": "error", "id": null, "code": "bad_message", "message": BAD_MESSAGE});
    for message in [
        "not json".to_string(),
        "{\"op\":".to_string(),
        "[1,2,3]".to_string(),
        json!({"op": "dance", "id": 1}).to_string(),
        json!({"id": 2}).to_string(),
        json!({"op": "subscribe", "accounts": "individual"}).to_string(),
        json!({"op": "subscribe", "acounts": ["individual"]}).to_string(),
        json!({"op": "ping", "id": 3, "extra": true}).to_string(),
    ] {
        ws.send(Message::text(message.clone())).await.unwrap();
        assert_eq!(
            scanned_json(&mut ws, 5 * SECOND, &scan).await,
            bad,
            "{message}"
        );
    }
    ws.send(Message::binary(b"{\"op\":\"ping\"}".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "error", "id": null, "code": "bad_message", "message": "binary messages are not supported; send JSON text"})
    );
    // Still usable: ping, then a subscription.
    send_json(&mut ws, json!({"op": "ping", "id": "p-1"})).await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "pong", "id": "p-1"})
    );
    send_json(&mut ws, json!({"op": "ping"})).await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "pong", "id": null})
    );
    send_json(
        &mut ws,
        json!({"op": "subscribe", "id": 9, "accounts": ["roth-ira"]}),
    )
    .await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "ack", "id": 9, "op": "subscribe", "accounts": ["roth-ira"], "types": null})
    );
    let snapshot = scanned_json(&mut ws, 5 * SECOND, &scan).await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["account"], "roth-ira");
    // A WebSocket-level ping is answered too.
    ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(5 * SECOND, async {
        loop {
            match futures::StreamExt::next(&mut ws).await {
                Some(Ok(Message::Pong(payload))) => return payload,
                Some(Ok(_)) => continue,
                other => panic!("socket ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a pong");
    assert_eq!(&pong[..], b"hi");
    scan.assert_clean(200);
    gw.stop().await;
}

#[tokio::test]
async fn unknown_accounts_and_bad_resume_positions_are_refused_without_echoing() {
    let gw = TestGateway::start(&[]).await;
    let scan = LeakScan::new(&[]);
    let mut ws = open(&gw).await;
    let unknown = "no account with that id; GET /v1/accounts lists them";
    for (id, accounts, which) in [
        (json!(1), json!(["nope"]), 1),
        (json!("two"), json!([INDIVIDUAL]), 1),
        (json!(3), json!(["individual", "nope"]), 2),
    ] {
        send_json(
            &mut ws,
            json!({"op": "subscribe", "id": id, "accounts": accounts}),
        )
        .await;
        assert_eq!(
            scanned_json(&mut ws, 5 * SECOND, &scan).await,
            json!({"type": "error", "id": id, "code": "unknown_account", "message": format!("{unknown} (account #{which} of the request)")})
        );
    }
    send_json(
        &mut ws,
        json!({"op": "subscribe", "id": 4, "accounts": ["individual"], "resume": {"individual": "garbage"}}),
    )
    .await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "error", "id": 4, "code": "bad_resume", "message": "resume positions are \"<epoch>-<seq>\", as in event ids"})
    );
    // None of the refusals left a subscription behind: nothing arrives on an event.
    gw.inject(
        INDIVIDUAL,
        "Order",
        json!({"id": 553001, "status": "Live", "updated-at": 4_102_444_800_000_i64}),
    )
    .await;
    assert_quiet(&mut ws, Duration::from_millis(300)).await;
    send_json(&mut ws, json!({"op": "ping", "id": 5})).await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "pong", "id": 5})
    );
    scan.assert_clean(200);
    gw.stop().await;
}

#[tokio::test]
async fn events_are_the_sse_envelopes_byte_for_byte_and_the_types_filter_holds() {
    let gw = TestGateway::start(&[]).await;
    let scan = LeakScan::new(&[]);
    let mut sse = RawHttp::get(
        gw.gateway.addr,
        "/v1/accounts/individual/events",
        &[],
        None,
        Some(&scan),
    )
    .await;
    sse.read_frames(1, 5 * SECOND).await;
    let mut ws = open(&gw).await;
    let mut all = open(&gw).await;
    send_json(
        &mut ws,
        json!({"op": "subscribe", "id": 1, "accounts": ["individual"], "types": ["AccountBalance"]}),
    )
    .await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "ack", "id": 1, "op": "subscribe", "accounts": ["individual"], "types": ["AccountBalance"]})
    );
    let snapshot = scanned_json(&mut ws, 5 * SECOND, &scan).await;
    let seq = snapshot["seq"].as_u64().unwrap();
    let epoch = snapshot["data"]["epoch"].as_str().unwrap().to_string();
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["account"], "individual");
    assert_eq!(snapshot["id"], json!(format!("{epoch}-{seq}")));
    assert_eq!(snapshot["data"]["seq"], json!(seq));
    assert_eq!(snapshot["data"]["account"], "individual");
    // `accounts` empty: every account, in registry order.
    send_json(&mut all, json!({"op": "subscribe", "accounts": []})).await;
    assert_eq!(
        scanned_json(&mut all, 5 * SECOND, &scan).await,
        json!({"type": "ack", "id": null, "op": "subscribe", "accounts": ["individual", "roth-ira"], "types": null})
    );
    for account in ["individual", "roth-ira"] {
        let snapshot = scanned_json(&mut all, 5 * SECOND, &scan).await;
        assert_eq!(
            (snapshot["type"].as_str(), snapshot["account"].as_str()),
            (Some("snapshot"), Some(account))
        );
    }

    gw.inject(
        INDIVIDUAL,
        "Order",
        json!({"id": 554001, "status": "Live", "updated-at": 4_102_444_800_000_i64}),
    )
    .await;
    let mut balance = snapshot["data"]["balance"].clone();
    balance["account-number"] = json!(INDIVIDUAL);
    balance["cash-balance"] = json!("2222.22");
    balance["updated-at"] = json!("2099-01-01T00:00:00.000+00:00");
    gw.inject(INDIVIDUAL, "AccountBalance", balance).await;

    let frames = sse.read_frames(3, 5 * SECOND).await;
    let filtered = scanned_text(&mut ws, 5 * SECOND, &scan).await;
    assert_eq!(
        filtered,
        frames[2].data().unwrap(),
        "the balance event, byte-identical to SSE's data"
    );
    let envelope: Value = serde_json::from_str(&filtered).unwrap();
    assert_eq!(
        envelope["seq"],
        json!(seq + 2),
        "the order was filtered out"
    );
    assert_eq!(envelope["type"], "AccountBalance");
    assert_eq!(envelope["data"]["account-number"], "***1842");
    for frame in &frames[1..] {
        assert_eq!(
            scanned_text(&mut all, 5 * SECOND, &scan).await,
            frame.data().unwrap()
        );
        assert_eq!(
            split_id(frame.id().unwrap()).0,
            epoch,
            "one epoch for SSE and WebSocket"
        );
    }

    // Unsubscribe: acked, and nothing more arrives.
    send_json(&mut ws, json!({"op": "unsubscribe", "id": 2})).await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "ack", "id": 2, "op": "unsubscribe"})
    );
    let mut balance = envelope["data"].clone();
    balance["account-number"] = json!(INDIVIDUAL);
    balance["cash-balance"] = json!("3333.33");
    gw.inject(INDIVIDUAL, "AccountBalance", balance).await;
    sse.read_frames(4, 5 * SECOND).await;
    assert_quiet(&mut ws, Duration::from_millis(300)).await;
    send_json(&mut ws, json!({"op": "ping", "id": 3})).await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await,
        json!({"type": "pong", "id": 3})
    );

    // Resume: exactly the events after the position; a stale epoch gets a reset.
    send_json(
        &mut ws,
        json!({"op": "subscribe", "id": 4, "accounts": ["individual"], "resume": {"individual": format!("{epoch}-{seq}")}}),
    )
    .await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await["type"],
        "ack"
    );
    for expected in seq + 1..=seq + 3 {
        let event = scanned_json(&mut ws, 5 * SECOND, &scan).await;
        assert_eq!(event["seq"], json!(expected));
        assert_eq!(event["id"], json!(format!("{epoch}-{expected}")));
    }
    send_json(
        &mut ws,
        json!({"op": "subscribe", "id": 5, "accounts": ["individual"], "resume": {"individual": "0ld3poch-2"}}),
    )
    .await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await["type"],
        "ack"
    );
    let reset = scanned_json(&mut ws, 5 * SECOND, &scan).await;
    assert_eq!(reset["type"], "reset");
    assert_eq!(reset["seq"], json!(seq + 3));
    assert_eq!(reset["id"], json!(format!("{epoch}-{}", seq + 3)));
    assert_eq!(reset["data"]["balance"]["cash-balance"], "3333.33");
    scan.assert_clean(1000);
    gw.stop().await;
}

#[tokio::test]
async fn shutdown_closes_websockets_with_1001_and_ends_sse_streams() {
    let gw = TestGateway::start(&[]).await;
    let scan = LeakScan::new(&[]);
    let mut ws = open(&gw).await;
    send_json(&mut ws, json!({"op": "subscribe", "accounts": ["*"]})).await;
    assert_eq!(
        scanned_json(&mut ws, 5 * SECOND, &scan).await["type"],
        "ack"
    );
    let mut sse = RawHttp::get(gw.gateway.addr, "/v1/events", &[], None, Some(&scan)).await;
    sse.read_frames(2, 5 * SECOND).await;
    let stopping = tokio::spawn(gw.stop());
    let (code, reason, before) = scanned_close(&mut ws, 10 * SECOND, &scan).await;
    assert_eq!(code, 1001);
    assert_eq!(reason, "gateway shutting down");
    let kinds: Vec<Value> = before
        .iter()
        .map(|m| serde_json::from_str::<Value>(m).unwrap()["type"].clone())
        .collect();
    assert_eq!(kinds[..2], [json!("snapshot"), json!("snapshot")]);
    assert!(
        kinds[2..].iter().all(|k| k == "status"),
        "only the upstream links' `stopped` status may squeeze in before the close: {kinds:?}"
    );
    sse.read_to_end(10 * SECOND).await;
    let frames = sse.frames();
    assert_eq!(
        frames.last().unwrap().lines,
        vec![": gateway shutting down".to_string()]
    );
    tokio::time::timeout(10 * SECOND, stopping)
        .await
        .expect("shutdown is bounded")
        .unwrap();
    scan.assert_clean(200);
}
