//! The known tastytrade pitfalls (shared/protocol §5) played through the simulator's control
//! API against the real gateway, one test per pitfall the simulator can produce, each named
//! after it and asserting the exact events, snapshot content and upstream counters.
//! (Tokens and heartbeats: tests/api/upstream_tokens.rs; close, drop, silence and large frames:
//! tests/api/upstream_faults.rs.)

use std::time::Duration;

use crate::helpers::gateway::{SseClient, TestGateway, config, id_of};
use crate::helpers::sim::sample_order;
use crate::helpers::{FAST, FIVE_SECONDS, INDIVIDUAL, wait_until};
use serde_json::{Value, json};

/// 2026-10-03T14:00:00Z in epoch milliseconds.
const T0_MS: i64 = 1_791_036_000_000;

/// `data` as the gateway shows it: the account number masked.
fn masked(data: &Value) -> Value {
    let mut data = data.clone();
    data["account-number"] = json!("***1842");
    data
}

/// Sends a marker order and checks it is the next change on the stream: proves that
/// nothing was published for what was injected before it.
async fn nothing_published_before_marker(gw: &TestGateway, sse: &mut SseClient, id: u64) {
    let marker = json!({"id": id, "status": "Live", "updated-at": T0_MS});
    gw.inject(INDIVIDUAL, "Order", marker).await;
    let event = sse.next_change(FIVE_SECONDS).await;
    assert_eq!(
        (event.event.as_str(), &event.data["data"]["id"]),
        ("Order", &json!(id)),
        "the marker is the next change: {:?}",
        event.data
    );
}

/// Injects one event and returns the change it published.
async fn published(gw: &TestGateway, sse: &mut SseClient, kind: &str, data: &Value) -> Value {
    gw.inject(INDIVIDUAL, kind, data.clone()).await;
    let event = sse.next_change(FIVE_SECONDS).await;
    assert_eq!(event.event, kind, "{:?}", event.data);
    assert_eq!(event.data["type"], kind);
    assert_eq!(event.data["source"], "stream");
    event.data
}

/// The order with `id` in a snapshot.
fn order_in(snapshot: &Value, id: u64) -> Option<Value> {
    snapshot["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| id_of(o) == id.to_string())
        .cloned()
}

fn position_in(snapshot: &Value, symbol: &str) -> Option<Value> {
    snapshot["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == symbol)
        .cloned()
}

/// The individual account's counters are exactly `expected` (skipped, unknown, invalid, reconnects).
async fn assert_counters(gw: &TestGateway, expected: [u64; 4]) {
    let upstream = gw.upstream("individual").await;
    let got = [
        "skipped_frames",
        "unknown_events",
        "invalid_events",
        "reconnects",
    ]
    .map(|k| upstream[k].as_u64().unwrap());
    assert_eq!(
        got, expected,
        "[skipped_frames, unknown_events, invalid_events, reconnects]: {upstream}"
    );
    assert_eq!(upstream["state"], "live", "{upstream}");
}

async fn finish(gw: TestGateway, sse: SseClient) {
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

/// Pitfalls 1 and 2: only `connect` subscribes (never `account-subscribe`), and nothing is
/// sent before it, also after a reconnect: the simulator never had to answer with an error.
#[tokio::test]
async fn p01_p02_connect_first_and_never_account_subscribe() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    gw.sim_post("/sim/faults/drop", json!({"account": INDIVIDUAL}))
        .await;
    wait_until("the reconnect", FIVE_SECONDS, || async {
        let upstream = gw.upstream("individual").await;
        upstream["reconnects"] == 1 && upstream["state"] == "live"
    })
    .await;
    let heartbeats = gw.sim_stat("heartbeats").await;
    wait_until("heartbeats on the new socket", FIVE_SECONDS, || async {
        gw.sim_stat("heartbeats").await >= heartbeats + 2
    })
    .await;
    wait_until(
        "every message a connect (one per socket) or a heartbeat",
        FIVE_SECONDS,
        || async {
            let s = gw.sim_get("/sim/stats").await;
            s["messages_received"].as_u64().unwrap()
                == s["streamer_connections"].as_u64().unwrap() + s["heartbeats"].as_u64().unwrap()
        },
    )
    .await;
    let stats = gw.sim_get("/sim/stats").await;
    assert_eq!(stats["streamer_connections"], 3, "{stats}");
    assert_eq!(stats["error_replies"], 0, "{stats}");
    assert_eq!(stats["failed_auth_messages"], 0, "{stats}");
    // The subscription works: an event reaches the subscriber.
    let order = json!({"id": 930_001, "status": "Live", "updated-at": T0_MS});
    let event = published(&gw, &mut sse, "Order", &order).await;
    assert_eq!(event["data"], masked(&order));
    assert_counters(&gw, [0, 0, 0, 1]).await;
    finish(gw, sse).await;
}

/// Pitfall 8: acks without `request-id` are not dropped as undecodable; an ack nobody asked
/// for changes nothing; an error without `request-id` ends the socket (`failed`: after one
/// re-authentication), then reconnect and resync.
#[tokio::test]
async fn p08_acks_and_errors_without_request_id() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    gw.inject_raw(
        INDIVIDUAL,
        r#"{"status":"ok","action":"heartbeat","web-socket-session-id":"0badf00d"}"#,
    )
    .await;
    gw.inject_raw(
        INDIVIDUAL,
        r#"{"status":"ok","action":"connect","web-socket-session-id":"0badf00d","value":["5WT31842"]}"#,
    )
    .await;
    nothing_published_before_marker(&gw, &mut sse, 930_101).await;
    assert_counters(&gw, [0, 0, 0, 0]).await;

    let tokens = gw.sim_stat("tokens_issued").await;
    gw.inject_raw(
        INDIVIDUAL,
        r#"{"status":"error","action":"heartbeat","web-socket-session-id":"0badf00d","message":"failed"}"#,
    )
    .await;
    wait_until("the reconnect after `failed`", FIVE_SECONDS, || async {
        let upstream = gw.upstream("individual").await;
        upstream["reconnects"] == 1 && upstream["state"] == "live"
    })
    .await;
    let upstream = gw.upstream("individual").await;
    assert_eq!(
        upstream["last_error"],
        "account streamer: heartbeat refused: failed"
    );
    assert_eq!(
        gw.sim_stat("tokens_issued").await,
        tokens + 1,
        "exactly one re-authentication"
    );

    let tokens = gw.sim_stat("tokens_issued").await;
    gw.inject_raw(
        INDIVIDUAL,
        r#"{"status":"error","action":"heartbeat","web-socket-session-id":"0badf00d","message":"not-implemented"}"#,
    )
    .await;
    wait_until(
        "the reconnect after `not-implemented`",
        FIVE_SECONDS,
        || async {
            let upstream = gw.upstream("individual").await;
            upstream["reconnects"] == 2 && upstream["state"] == "live"
        },
    )
    .await;
    assert_eq!(
        gw.upstream("individual").await["last_error"],
        "account streamer: heartbeat refused: not-implemented"
    );
    assert_eq!(
        gw.sim_stat("tokens_issued").await,
        tokens,
        "the token is kept"
    );
    assert_eq!(gw.upstream("roth-ira").await["reconnects"], 0);
    let order = json!({"id": 930_102, "status": "Live", "updated-at": T0_MS});
    published(&gw, &mut sse, "Order", &order).await;
    assert_counters(&gw, [0, 0, 0, 2]).await;
    gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    finish(gw, sse).await;
}

/// Pitfall 9: an unknown `type` is passed through untouched and counted, the state is not
/// touched, the reader lives on; unknown fields of known types are kept.
#[tokio::test]
async fn p09_unknown_type_and_unknown_fields_pass_through() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, first) = gw.subscribed("individual").await;
    let before = gw.snapshot("individual").await;
    let margin = json!({"account-number": INDIVIDUAL, "margin-requirement": "1234.5",
        "margin-requirement-effect": "Debit", "nested": {"list": [1, "two", null], "note": format!("for {INDIVIDUAL}")}});
    let event = published(&gw, &mut sse, "MarginRequirement", &margin).await;
    let mut expected = masked(&margin);
    expected["nested"]["note"] = json!("for ***1842");
    assert_eq!(event["data"], expected);
    assert_eq!(event["account"], "individual");
    let chain = json!({"id": "145048656", "underlying-symbol": "SPY", "updated-at": "2025-12-23T15:42:36.753Z",
        "computed-data": {"open": true, "updated-at": "2025-12-23T15:42:36.753+0000"}, "lite-nodes": []});
    let event = published(&gw, &mut sse, "OrderChain", &chain).await;
    assert_eq!(event["data"], masked(&chain));

    let mut order = sample_order(INDIVIDUAL, 930_201, "Live");
    order["brand-new-field"] = json!({"x": [1, 2], "y": "z"});
    order["legs"][0]["leg-extra"] = json!(true);
    let event = published(&gw, &mut sse, "Order", &order).await;
    assert_eq!(event["data"], masked(&order));
    let after = gw.snapshot("individual").await;
    assert_eq!(order_in(&after, 930_201), Some(masked(&order)));
    assert_eq!(after["seq"], json!(first.data["seq"].as_u64().unwrap() + 3));
    assert_eq!(after["positions"], before["positions"]);
    assert_eq!(after["balance"], before["balance"]);
    assert_eq!(after["trading_status"], before["trading_status"]);
    assert_counters(&gw, [0, 1, 0, 0]).await;
    gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    finish(gw, sse).await;
}

/// Pitfall 10: `id`/`size`/`quantity` as string or number, `updated-at` as epoch ms or ISO,
/// `user-id` as number or string all key and order the same object.
#[tokio::test]
async fn p10_field_type_drift_keys_consistently() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let mut as_strings = sample_order(INDIVIDUAL, 930_301, "Live");
    as_strings["id"] = json!("930301");
    as_strings["size"] = json!("3");
    as_strings["user-id"] = json!(99);
    as_strings["updated-at"] = json!(T0_MS);
    as_strings["legs"][0]["quantity"] = json!("3");
    as_strings["legs"][0]["remaining-quantity"] = json!("3");
    let event = published(&gw, &mut sse, "Order", &as_strings).await;
    assert_eq!(event["data"], masked(&as_strings));

    // The same order as numbers, one second newer as an ISO string: it replaces the first.
    let mut as_numbers = sample_order(INDIVIDUAL, 930_301, "Filled");
    as_numbers["user-id"] = json!("99");
    as_numbers["updated-at"] = json!("2026-10-03T14:00:01.000Z");
    as_numbers["legs"][0]["remaining-quantity"] = json!(0);
    let event = published(&gw, &mut sse, "Order", &as_numbers).await;
    assert_eq!(event["data"], masked(&as_numbers));

    // Half a second older than that, as a string id and epoch ms: stale, not published.
    let mut older = as_strings.clone();
    older["updated-at"] = json!(T0_MS + 500);
    gw.inject(INDIVIDUAL, "Order", older).await;
    nothing_published_before_marker(&gw, &mut sse, 930_302).await;

    let snapshot = gw.snapshot("individual").await;
    let matching: Vec<&Value> = snapshot["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| id_of(o) == "930301")
        .collect();
    assert_eq!(
        matching,
        vec![&masked(&as_numbers)],
        "one order, the newest"
    );

    // A position's quantity and multiplier as number, then as string: one position.
    let position = json!({"symbol": "IBM", "instrument-type": "Equity", "quantity": 7, "quantity-direction": "Long",
        "multiplier": 1, "updated-at": "2026-10-03T14:00:00.000+00:00"});
    published(&gw, &mut sse, "CurrentPosition", &position).await;
    let mut as_text = position.clone();
    as_text["quantity"] = json!("8");
    as_text["multiplier"] = json!("1");
    as_text["updated-at"] = json!(T0_MS + 1);
    published(&gw, &mut sse, "CurrentPosition", &as_text).await;
    let snapshot = gw.snapshot("individual").await;
    let ibm: Vec<&Value> = snapshot["positions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["symbol"] == "IBM")
        .collect();
    assert_eq!(ibm, vec![&masked(&as_text)]);

    // A trading status with `id` and `day-trade-count` as strings, `updated-at` in `+0000`.
    let mut status = snapshot["trading_status"].clone();
    status["id"] = json!("15");
    status["day-trade-count"] = json!("2");
    status["updated-at"] = json!("2099-01-01T00:00:00.000+0000");
    let event = published(&gw, &mut sse, "TradingStatus", &status).await;
    assert_eq!(event["data"], status);
    assert_eq!(gw.snapshot("individual").await["trading_status"], status);
    assert_counters(&gw, [0, 0, 0, 0]).await;
    finish(gw, sse).await;
}

/// Pitfall 11: every field but an object's key is optional (a TradingStatus without
/// `enhanced-fraud-safeguards-enabled-at`, an order without `leg-count` or legs, nulls); only
/// an object without its key, or with a broken shape, is skipped and counted.
#[tokio::test]
async fn p11_missing_optional_fields_are_accepted() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let status = json!({"id": 15, "account-number": INDIVIDUAL, "is-closing-only": false, "options-level": "No Restrictions",
        "updated-at": "2099-01-01T00:00:00.000+00:00"});
    let event = published(&gw, &mut sse, "TradingStatus", &status).await;
    assert_eq!(event["data"], masked(&status));
    let bare_order = json!({"id": 930_401, "status": "Live", "updated-at": T0_MS});
    published(&gw, &mut sse, "Order", &bare_order).await;
    let nulls = json!({"id": 930_402, "status": "Live", "updated-at": null, "price": null, "leg-count": null,
        "user-id": null, "legs": null});
    published(&gw, &mut sse, "Order", &nulls).await;
    let position = json!({"symbol": "IBM", "quantity": "3"});
    published(&gw, &mut sse, "CurrentPosition", &position).await;
    let balance = json!({"cash-balance": "1.5"});
    published(&gw, &mut sse, "AccountBalance", &balance).await;
    let complex = json!({"id": 5_123, "type": "OCO", "orders": null, "trigger-order": null, "terminal-at": null});
    published(&gw, &mut sse, "ComplexOrder", &complex).await;
    assert_counters(&gw, [0, 0, 0, 0]).await;

    let snapshot = gw.snapshot("individual").await;
    assert_eq!(snapshot["trading_status"], masked(&status));
    assert_eq!(order_in(&snapshot, 930_401), Some(masked(&bare_order)));
    assert_eq!(order_in(&snapshot, 930_402), Some(masked(&nulls)));
    assert_eq!(position_in(&snapshot, "IBM"), Some(masked(&position)));
    assert_eq!(snapshot["balance"], masked(&balance));
    assert_eq!(snapshot["complex_orders"], json!([masked(&complex)]));
    gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;

    // No key, or a list where an object belongs: skipped and counted, nothing published.
    gw.inject(INDIVIDUAL, "Order", json!({"status": "Live"}))
        .await;
    gw.inject(INDIVIDUAL, "CurrentPosition", json!({"quantity": "1"}))
        .await;
    gw.inject(
        INDIVIDUAL,
        "Order",
        json!({"id": 930_403, "legs": "not a list"}),
    )
    .await;
    gw.inject_raw(INDIVIDUAL, r#"{"type":"AccountBalance","data":[1,2]}"#)
        .await;
    nothing_published_before_marker(&gw, &mut sse, 930_404).await;
    assert_counters(&gw, [0, 0, 4, 0]).await;
    assert_eq!(order_in(&gw.snapshot("individual").await, 930_403), None);
    finish(gw, sse).await;
}

/// Pitfall 12: decimals pass through exactly as tastytrade wrote them (9+ places,
/// fractional shares, `"NaN"`), in events and in the snapshot.
#[tokio::test]
async fn p12_decimal_precision_passes_through_exactly() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let mut order = sample_order(INDIVIDUAL, 930_501, "Live");
    order["price"] = json!("4337.831401355");
    order["value"] = json!("0.000000001");
    let event = published(&gw, &mut sse, "Order", &order).await;
    assert_eq!(event["data"]["price"], "4337.831401355");
    assert_eq!(event["data"], masked(&order));
    let position = json!({"symbol": "/6EZ6", "instrument-type": "Future", "quantity": "100.29", "quantity-direction": "Long",
        "multiplier": 125000, "fixing-price": "NaN", "average-open-price": "1.084150000", "close-price": "1.10",
        "updated-at": "2026-10-03T14:00:00.000+00:00"});
    let event = published(&gw, &mut sse, "CurrentPosition", &position).await;
    assert_eq!(event["data"], masked(&position));
    let mut balance = gw.snapshot("individual").await["balance"].clone();
    balance["cash-balance"] = json!("-40506.720000001");
    balance["net-liquidating-value"] = json!("176249.610");
    balance["updated-at"] = json!("2099-01-01T00:00:00.000Z");
    let event = published(&gw, &mut sse, "AccountBalance", &balance).await;
    assert_eq!(event["data"], balance);

    let snapshot = gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    let held = position_in(&snapshot, "/6EZ6").unwrap();
    assert_eq!(
        (
            &held["quantity"],
            &held["fixing-price"],
            &held["average-open-price"],
            &held["close-price"]
        ),
        (
            &json!("100.29"),
            &json!("NaN"),
            &json!("1.084150000"),
            &json!("1.10")
        )
    );
    assert_eq!(
        order_in(&snapshot, 930_501).unwrap()["price"],
        "4337.831401355"
    );
    assert_eq!(snapshot["balance"]["cash-balance"], "-40506.720000001");
    assert_eq!(snapshot["balance"]["net-liquidating-value"], "176249.610");
    assert_counters(&gw, [0, 0, 0, 0]).await;
    finish(gw, sse).await;
}

/// Pitfall 13: magnitudes and their `-effect` (Debit, Credit, None) are passed through
/// untouched: the gateway never applies or drops a sign.
#[tokio::test]
async fn p13_debit_credit_effects_are_untouched() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let mut order = sample_order(INDIVIDUAL, 930_601, "Live");
    order["price"] = json!("1.25");
    order["price-effect"] = json!("Credit");
    order["value"] = json!("125.0");
    order["value-effect"] = json!("Debit");
    let event = published(&gw, &mut sse, "Order", &order).await;
    assert_eq!(event["data"], masked(&order));
    let position = json!({"symbol": "IBM", "instrument-type": "Equity", "quantity": "5", "quantity-direction": "Short",
        "cost-effect": "Credit", "realized-day-gain": "125.4", "realized-day-gain-effect": "Debit",
        "realized-today": "0.0", "realized-today-effect": "None", "updated-at": "2026-10-03T14:00:00.000+00:00"});
    let event = published(&gw, &mut sse, "CurrentPosition", &position).await;
    assert_eq!(event["data"], masked(&position));
    let mut balance = gw.snapshot("individual").await["balance"].clone();
    balance["pending-cash"] = json!("500.0");
    balance["pending-cash-effect"] = json!("Debit");
    balance["buying-power-adjustment"] = json!("0.0");
    balance["buying-power-adjustment-effect"] = json!("None");
    balance["updated-at"] = json!("2099-01-01T00:00:00.000Z");
    let event = published(&gw, &mut sse, "AccountBalance", &balance).await;
    assert_eq!(event["data"], balance);
    let chain = json!({"id": "145048657", "computed-data": {"total-fees": "1.26", "total-fees-effect": "Debit",
        "realized-gain": "0.0", "realized-gain-effect": "None", "total-opening-cost": "2.5", "total-opening-cost-effect": "Credit"}});
    let event = published(&gw, &mut sse, "OrderChain", &chain).await;
    assert_eq!(event["data"], masked(&chain));
    let snapshot = gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    assert_eq!(order_in(&snapshot, 930_601), Some(masked(&order)));
    assert_eq!(position_in(&snapshot, "IBM"), Some(masked(&position)));
    assert_counters(&gw, [0, 0, 0, 0]).await;
    finish(gw, sse).await;
}

/// Pitfall 14: `updated-at` as `...Z`, `...+00:00` and `...+0000` (and epoch ms) are one
/// clock: a newer version wins and an older one is ignored across the forms.
#[tokio::test]
async fn p14_three_timestamp_forms_order_newer_wins() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let at = |quantity: &str, updated: &str| {
        json!({"symbol": "IBM", "instrument-type": "Equity", "quantity": quantity, "quantity-direction": "Long",
            "updated-at": updated})
    };
    // (quantity, updated-at, newest so far?)
    let versions = [
        ("10", "2026-10-03T14:00:00.500+00:00", true),
        ("7", "2026-10-03T14:00:00.400Z", false),
        ("8", "2026-10-03T14:00:00.450+0000", false),
        ("11", "2026-10-03T14:00:00.600+0000", true),
        ("9", "2026-10-03T14:00:00.550Z", false),
        ("12", "2026-10-03T14:00:00.700Z", true),
        ("6", "2026-10-03T14:00:00.650+00:00", false),
        ("5", "2026-10-03T14:00:00.699+0000", false),
    ];
    for (quantity, updated, _) in versions {
        gw.inject(INDIVIDUAL, "CurrentPosition", at(quantity, updated))
            .await;
    }
    for (quantity, updated, newest) in versions {
        if newest {
            let event = sse.next_change(FIVE_SECONDS).await;
            assert_eq!(event.event, "CurrentPosition");
            assert_eq!(event.data["data"], masked(&at(quantity, updated)));
        }
    }
    nothing_published_before_marker(&gw, &mut sse, 930_701).await;
    let snapshot = gw.snapshot("individual").await;
    assert_eq!(
        position_in(&snapshot, "IBM"),
        Some(masked(&at("12", "2026-10-03T14:00:00.700Z")))
    );

    // Orders: epoch ms against `+0000`.
    let order = |status: &str, updated: Value| json!({"id": 930_702, "status": status, "updated-at": updated});
    published(&gw, &mut sse, "Order", &order("Live", json!(T0_MS + 100))).await;
    gw.inject(
        INDIVIDUAL,
        "Order",
        order("Routed", json!("2026-10-03T14:00:00.050+0000")),
    )
    .await;
    // The stale `Routed` published nothing: the next change is the newer `Filled`.
    let newer = order("Filled", json!("2026-10-03T14:00:00.150+0000"));
    let event = published(&gw, &mut sse, "Order", &newer).await;
    assert_eq!(event["data"], masked(&newer));
    let snapshot = gw.snapshot("individual").await;
    assert_eq!(order_in(&snapshot, 930_702), Some(masked(&newer)));
    assert_counters(&gw, [0, 0, 0, 0]).await;
    finish(gw, sse).await;
}

fn filled(fills: &[&str]) -> Value {
    let fills: Vec<Value> = fills
        .iter()
        .map(|id| json!({"fill-id": id, "quantity": 1, "fill-price": "410.5", "filled-at": "2026-10-03T14:00:01.000+00:00"}))
        .collect();
    let remaining = 3 - fills.len().min(3);
    let mut order = sample_order(INDIVIDUAL, 930_801, "Filled");
    order["updated-at"] = json!(T0_MS + 2_000);
    order["legs"][0]["remaining-quantity"] = json!(remaining);
    order["legs"][0]["fills"] = json!(fills);
    order
}

/// Pitfall 15: `Filled` arrives again and again with growing `fills[]` (same `updated-at`);
/// every fuller copy is published, a copy with fewer fills is stale, a repeated `fill-id` is
/// held once, and events and snapshot always agree.
#[tokio::test]
async fn p15_repeated_filled_with_growing_fills() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let live = sample_order(INDIVIDUAL, 930_801, "Live");
    published(&gw, &mut sse, "Order", &live).await;
    let one = filled(&["f1"]);
    assert_eq!(
        published(&gw, &mut sse, "Order", &one).await["data"],
        masked(&one)
    );
    let two = filled(&["f1", "f2"]);
    assert_eq!(
        published(&gw, &mut sse, "Order", &two).await["data"],
        masked(&two)
    );
    gw.inject(INDIVIDUAL, "Order", filled(&["f1"])).await;
    nothing_published_before_marker(&gw, &mut sse, 930_802).await;
    let three = filled(&["f1", "f2", "f3"]);
    assert_eq!(
        published(&gw, &mut sse, "Order", &three).await["data"],
        masked(&three)
    );
    let snapshot = gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    assert_eq!(order_in(&snapshot, 930_801), Some(masked(&three)));

    // The same fill twice in one copy: held once; the copy equals what is held, so nothing
    // is published, and a subscriber's copy still equals the snapshot.
    gw.inject(INDIVIDUAL, "Order", filled(&["f1", "f2", "f3", "f3"]))
        .await;
    nothing_published_before_marker(&gw, &mut sse, 930_803).await;
    // A fourth fill arrives with a duplicate: published and held without the duplicate.
    let mut four = filled(&["f1", "f2", "f3", "f4", "f4"]);
    four["updated-at"] = json!(T0_MS + 3_000);
    let event = published(&gw, &mut sse, "Order", &four).await;
    let expected = masked(&filled(&["f1", "f2", "f3", "f4"]));
    let mut expected = expected;
    expected["updated-at"] = json!(T0_MS + 3_000);
    assert_eq!(event["data"], expected, "the event carries what is held");
    let snapshot = gw.snapshot("individual").await;
    assert_eq!(order_in(&snapshot, 930_801), Some(expected));
    assert_counters(&gw, [0, 0, 0, 0]).await;
    finish(gw, sse).await;
}

/// Pitfall 16: the fill arrives before the position update (which may lag for seconds): the
/// order is published at once, the position as it comes; no waiting, no guessing.
#[tokio::test]
async fn p16_fill_arrives_before_the_position_update() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let before = position_in(&gw.snapshot("individual").await, "AAPL").unwrap();
    assert_eq!(before["quantity"], "50");
    let mut order = sample_order(INDIVIDUAL, 930_901, "Filled");
    order["underlying-symbol"] = json!("AAPL");
    order["size"] = json!(10);
    order["legs"] = json!([{"instrument-type": "Equity", "symbol": "AAPL", "action": "Sell to Close", "quantity": 10,
        "remaining-quantity": 0, "fills": [{"fill-id": "f-930901", "quantity": 10, "fill-price": "231.45"}]}]);
    let event = published(&gw, &mut sse, "Order", &order).await;
    let order_seq = event["seq"].as_u64().unwrap();
    let snapshot = gw.snapshot("individual").await;
    assert_eq!(order_in(&snapshot, 930_901), Some(masked(&order)));
    assert_eq!(
        position_in(&snapshot, "AAPL"),
        Some(before.clone()),
        "the position is not guessed from the fill"
    );
    assert!(
        sse.drain(Duration::from_millis(300)).await.is_empty(),
        "nothing else is published"
    );

    let mut position = before.clone();
    position["quantity"] = json!("40");
    position["updated-at"] = json!("2099-01-01T00:00:00.000+00:00");
    gw.inject(INDIVIDUAL, "CurrentPosition", position.clone())
        .await;
    let event = sse.next_change(FIVE_SECONDS).await;
    assert_eq!(event.event, "CurrentPosition");
    assert_eq!(event.data["seq"].as_u64().unwrap(), order_seq + 1);
    assert_eq!(event.data["data"], position);
    let snapshot = gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    assert_eq!(position_in(&snapshot, "AAPL"), Some(position));
    assert_counters(&gw, [0, 0, 0, 0]).await;
    finish(gw, sse).await;
}

/// Pitfall 17: a replace is a cancel of the old id plus a new id; both orders are kept with
/// `replacing-order-id` / `replaces-order-id` intact.
#[tokio::test]
async fn p17_replace_is_cancel_plus_new_id() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let original = sample_order(INDIVIDUAL, 931_001, "Live");
    published(&gw, &mut sse, "Order", &original).await;
    let mut cancelled = original.clone();
    cancelled["status"] = json!("Cancelled");
    cancelled["replacing-order-id"] = json!(931_002);
    cancelled["cancellable"] = json!(false);
    cancelled["editable"] = json!(false);
    cancelled["cancelled-at"] = json!("2026-10-03T14:00:01.000+00:00");
    cancelled["terminal-at"] = json!("2026-10-03T14:00:01.000+00:00");
    cancelled["updated-at"] = json!(T0_MS + 1_000);
    let mut replacement = sample_order(INDIVIDUAL, 931_002, "Live");
    replacement["price"] = json!("410.55");
    replacement["replaces-order-id"] = json!(931_001);
    replacement["updated-at"] = json!(T0_MS + 1_001);
    gw.sim_post(
        &format!("/sim/accounts/{INDIVIDUAL}/events"),
        json!({"events": [{"type": "Order", "data": cancelled}, {"type": "Order", "data": replacement}]}),
    )
    .await;
    let first = sse.next_change(FIVE_SECONDS).await;
    let second = sse.next_change(FIVE_SECONDS).await;
    assert_eq!(first.data["data"], masked(&cancelled));
    assert_eq!(second.data["data"], masked(&replacement));
    let snapshot = gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    assert_eq!(order_in(&snapshot, 931_001), Some(masked(&cancelled)));
    assert_eq!(order_in(&snapshot, 931_002), Some(masked(&replacement)));
    assert_counters(&gw, [0, 0, 0, 0]).await;
    finish(gw, sse).await;
}

/// Pitfall 18: `/orders/live` lists today's terminal orders too; the snapshot keeps them
/// (from the baseline, from the stream, and across a reconnect's resync) with their status.
#[tokio::test]
async fn p18_terminal_orders_from_orders_live_stay_in_the_snapshot() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let snapshot = gw.snapshot("individual").await;
    let statuses: Vec<(String, Value)> = snapshot["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (id_of(o), o["status"].clone()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("300101".to_string(), json!("Live")),
            ("300102".to_string(), json!("Cancelled"))
        ]
    );
    let mut filled = sample_order(INDIVIDUAL, 931_101, "Filled");
    filled["legs"][0]["remaining-quantity"] = json!(0);
    published(&gw, &mut sse, "Order", &filled).await;
    let rejected = json!({"id": 931_102, "status": "Rejected", "reject-reason": "Insufficient buying power", "updated-at": T0_MS});
    published(&gw, &mut sse, "Order", &rejected).await;
    gw.sim_post("/sim/faults/drop", json!({"account": INDIVIDUAL}))
        .await;
    wait_until("the reconnect", FIVE_SECONDS, || async {
        let upstream = gw.upstream("individual").await;
        upstream["reconnects"] == 1 && upstream["state"] == "live"
    })
    .await;
    let snapshot = gw.converge("individual", INDIVIDUAL, FIVE_SECONDS).await;
    let statuses: Vec<(String, Value)> = snapshot["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (id_of(o), o["status"].clone()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("300101".to_string(), json!("Live")),
            ("300102".to_string(), json!("Cancelled")),
            ("931101".to_string(), json!("Filled")),
            ("931102".to_string(), json!("Rejected")),
        ]
    );
    assert_eq!(order_in(&snapshot, 931_101), Some(masked(&filled)));
    assert_counters(&gw, [0, 0, 0, 1]).await;
    finish(gw, sse).await;
}

/// Pitfall 20: a `{"results":[...]}` batch is unwrapped in order; a junk element is skipped
/// and counted without costing its valid neighbours; junk frames never end the socket.
#[tokio::test]
async fn p20_results_batch_with_a_junk_element() {
    let gw = TestGateway::start(&FAST).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let order = json!({"id": 931_201, "account-number": INDIVIDUAL, "status": "Filled", "updated-at": T0_MS});
    let position = json!({"account-number": INDIVIDUAL, "symbol": "IBM", "instrument-type": "Equity", "quantity": "4",
        "quantity-direction": "Long", "updated-at": "2026-10-03T14:00:00.000Z"});
    let batch = json!({"results": [
        {"type": "Order", "data": order, "timestamp": T0_MS},
        42,
        {"type": "CurrentPosition", "data": position, "timestamp": T0_MS + 1},
    ]});
    gw.inject_raw(INDIVIDUAL, &batch.to_string()).await;
    let first = sse.next_change(FIVE_SECONDS).await;
    let second = sse.next_change(FIVE_SECONDS).await;
    assert_eq!(
        (first.event.as_str(), &first.data["data"]),
        ("Order", &masked(&order))
    );
    assert_eq!(first.data["timestamp"], T0_MS);
    assert_eq!(
        (second.event.as_str(), &second.data["data"]),
        ("CurrentPosition", &masked(&position))
    );
    assert_eq!(
        second.data["seq"].as_u64().unwrap(),
        first.data["seq"].as_u64().unwrap() + 1
    );
    assert_counters(&gw, [1, 0, 0, 0]).await;

    // More junk: an unrecognised object, a non-object element, an empty batch, not JSON.
    gw.inject_raw(
        INDIVIDUAL,
        r#"{"results":[{"neither":"type nor status"},"junk"]}"#,
    )
    .await;
    gw.inject_raw(INDIVIDUAL, r#"{"results":[]}"#).await;
    gw.inject_raw(INDIVIDUAL, "[]").await;
    gw.inject_raw(INDIVIDUAL, r#"{"results":[{"type":"Order","data":"#)
        .await;
    nothing_published_before_marker(&gw, &mut sse, 931_202).await;
    assert_counters(&gw, [5, 0, 0, 0]).await;
    let snapshot = gw.snapshot("individual").await;
    assert_eq!(order_in(&snapshot, 931_201), Some(masked(&order)));
    assert_eq!(position_in(&snapshot, "IBM"), Some(masked(&position)));

    // A batch through the simulator's own batching (the truth moves too).
    let events: Vec<Value> = (0..3)
        .map(|n| json!({"type": "Order", "data": {"id": 931_210 + n, "status": "Live", "updated-at": T0_MS}}))
        .collect();
    gw.sim_post(
        &format!("/sim/accounts/{INDIVIDUAL}/events"),
        json!({"events": events, "batch": true}),
    )
    .await;
    for n in 0..3 {
        let event = sse.next_change(FIVE_SECONDS).await;
        assert_eq!(event.data["data"]["id"], 931_210 + n);
    }
    assert_counters(&gw, [5, 0, 0, 0]).await;
    finish(gw, sse).await;
}

/// Pitfall 22: an account that is not the customer's is never subscribed: the start fails,
/// naming it masked.
#[tokio::test]
async fn p22_an_account_not_owned_is_refused_at_start() {
    let config = config(&["--accounts", "5WX06827"]);
    let outcome = tokio::time::timeout(FIVE_SECONDS, tastytrade_gateway::startup::start(config))
        .await
        .expect("the start gives up within 5 s");
    let error = match outcome {
        Ok(gateway) => {
            gateway.shutdown().await;
            panic!("the gateway served an account the customer does not own");
        }
        Err(error) => error,
    };
    assert_eq!(
        error.to_string(),
        "account ***6827 is not one of the customer's accounts"
    );
    assert!(!format!("{error:?}").contains("5WX06827"));
}
