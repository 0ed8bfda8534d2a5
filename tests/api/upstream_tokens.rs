//! Authentication and heartbeat discipline against the simulator: short-lived OAuth tokens
//! refreshed before they expire (never an expired token on the streamer), the legacy session
//! login (raw token), wrong credentials refused at start without echoing them, and heartbeats
//! that never come faster than tastytrade's 2 s nor provoke an error reply (pitfalls 1-4, 6).

use std::time::Duration;

use crate::helpers::gateway::{SseClient, TestGateway};
use crate::helpers::sim::sample_order;
use crate::helpers::{FIVE_SECONDS, FUTURE_MS, INDIVIDUAL, wait_until};
use serde_json::json;
use tastytrade_gateway::startup::{self, StartError};
use tastytrade_gateway::upstream::UpstreamError;
use tokio::time::Instant;

/// Injects an order and checks it reaches the subscriber, exactly and masked.
async fn injected_order_arrives(gw: &TestGateway, sse: &mut SseClient, id: u64) {
    let mut order = sample_order(INDIVIDUAL, id, "Live");
    order["updated-at"] = json!(FUTURE_MS + id as i64);
    gw.inject(INDIVIDUAL, "Order", order.clone()).await;
    let event = sse.next_change(FIVE_SECONDS).await;
    assert_eq!(event.event, "Order");
    assert_eq!(event.data["source"], "stream");
    order["account-number"] = json!("***1842");
    assert_eq!(event.data["data"], order);
}

/// Asserts the simulator never saw a refused message (auth or protocol) and no flood.
async fn assert_clean_streamer(gw: &TestGateway) {
    let stats = gw.sim_get("/sim/stats").await;
    assert_eq!(stats["failed_auth_messages"], 0, "{stats}");
    assert_eq!(stats["expired_token_messages"], 0, "{stats}");
    assert_eq!(stats["error_replies"], 0, "{stats}");
    assert_eq!(stats["heartbeats_too_fast"], 0, "{stats}");
}

#[tokio::test]
async fn tokens_expiring_every_three_seconds_are_refreshed_before_use() {
    let gw = TestGateway::start(&["--sim-token-ttl-secs", "3", "--heartbeat-secs", "2"]).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let issued = gw.sim_stat("tokens_issued").await;
    let heartbeats = gw.sim_stat("heartbeats").await;
    let started = Instant::now();
    // Four more tokens of 3 s each: the first ones expired long before the last was minted.
    wait_until(
        "four more tokens to be minted",
        Duration::from_secs(20),
        || async { gw.sim_stat("tokens_issued").await >= issued + 4 },
    )
    .await;
    wait_until(
        "heartbeats on both sockets for 12 s",
        Duration::from_secs(20),
        || async {
            started.elapsed() >= Duration::from_secs(12)
                && gw.sim_stat("heartbeats").await >= heartbeats + 8
        },
    )
    .await;
    assert!(gw.sim_stat("tokens_issued").await >= issued + 6);
    for id in ["individual", "roth-ira"] {
        let upstream = gw.upstream(id).await;
        assert_eq!(upstream["state"], "live", "{id}: {upstream}");
        assert_eq!(upstream["reconnects"], 0, "{id}: {upstream}");
        assert_eq!(upstream["last_error"], json!(null), "{id}: {upstream}");
    }
    injected_order_arrives(&gw, &mut sse, 920_001).await;
    assert_clean_streamer(&gw).await;
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn legacy_session_login_sends_the_raw_session_token() {
    let gw = TestGateway::start(&["--login", "demo", "--password", "demo-password"]).await;
    let (mut sse, _) = gw.subscribed("individual").await;
    for id in ["individual", "roth-ira"] {
        assert_eq!(gw.upstream(id).await["state"], "live");
    }
    injected_order_arrives(&gw, &mut sse, 920_002).await;
    // One 24 h session token serves REST and both sockets; `Bearer <session>` would be `failed`.
    assert_eq!(gw.sim_stat("tokens_issued").await, 1);
    assert_eq!(gw.sim_stat("streamer_connections").await, 2);
    assert_clean_streamer(&gw).await;
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn wrong_credentials_fail_the_start_quickly_without_echoing_them() {
    let config = crate::helpers::gateway::config(&[
        "--client-secret",
        "wrong-secret-5WT31842",
        "--refresh-token",
        "wrong-refresh-token",
    ]);
    let started = Instant::now();
    let outcome = tokio::time::timeout(FIVE_SECONDS, startup::start(config))
        .await
        .expect("the start gives up within 5 s");
    let error = match outcome {
        Ok(gateway) => {
            gateway.shutdown().await;
            panic!("the gateway started with wrong credentials");
        }
        Err(error) => error,
    };
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refused credential is not retried ({:?})",
        started.elapsed()
    );
    assert!(
        matches!(error, StartError::Accounts(UpstreamError::Auth(_))),
        "{error:?}"
    );
    let text = error.to_string();
    assert_eq!(
        text,
        "could not list the customer's accounts: tastytrade refused the credentials (HTTP 401 from the oauth token request)"
    );
    let debug = format!("{error:?}");
    for secret in ["wrong-secret", "wrong-refresh-token", "5WT31842"] {
        assert!(!text.contains(secret), "{text}");
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[tokio::test]
async fn heartbeats_are_never_faster_than_two_seconds_nor_refused() {
    let gw = TestGateway::start(&["--heartbeat-secs", "2"]).await;
    wait_until(
        "three heartbeats per socket",
        Duration::from_secs(12),
        || async { gw.sim_stat("heartbeats").await >= 6 },
    )
    .await;
    // Every message was one `connect` per socket or a heartbeat: no other action, no
    // `account-subscribe`, nothing before `connect` (that would be an error reply).
    wait_until(
        "messages = one connect per socket + heartbeats",
        FIVE_SECONDS,
        || async {
            let stats = gw.sim_get("/sim/stats").await;
            stats["messages_received"].as_u64()
                == Some(
                    stats["streamer_connections"].as_u64().unwrap()
                        + stats["heartbeats"].as_u64().unwrap(),
                )
        },
    )
    .await;
    let stats = gw.sim_get("/sim/stats").await;
    assert_eq!(stats["streamer_connections"], 2, "{stats}");
    assert_eq!(stats["streamer_open"], 2, "{stats}");
    assert_eq!(stats["idle_closes"], 0, "{stats}");
    assert_clean_streamer(&gw).await;
    for id in ["individual", "roth-ira"] {
        assert_eq!(gw.upstream(id).await["reconnects"], 0);
    }
    gw.stop().await;
}
