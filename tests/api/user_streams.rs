//! Optional account-independent subscriptions (quote alerts, public watchlists, user
//! messages): subscribed after `connect` on one socket when their flags are on, and
//! published on their own stream `user`, beside the accounts and in `/v1/events`.

use std::time::Duration;

use crate::helpers::FIVE_SECONDS;
use crate::helpers::gateway::TestGateway;
use serde_json::json;

#[tokio::test]
async fn quote_alerts_watchlists_and_user_messages_have_their_own_stream() {
    let gw =
        TestGateway::start(&["--quote-alerts", "--public-watchlists", "--user-messages"]).await;
    let (_, accounts) = gw.get("/v1/accounts").await;
    let ids: Vec<&str> = accounts["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["individual", "roth-ira"],
        "the user stream is no account"
    );

    // tastytrade pushes the watchlists right after the subscription: replay from the start.
    let (_, snapshot) = gw.get("/v1/accounts/user/snapshot").await;
    let epoch = snapshot["epoch"].as_str().unwrap().to_string();
    let mut user = gw
        .sse("/v1/accounts/user/events", Some(&format!("{epoch}-0")))
        .await;
    let watchlists = user.next_of("PublicWatchlists", FIVE_SECONDS).await;
    assert_eq!(watchlists.data["account"], "user");
    assert_eq!(watchlists.data["data"]["name"], "High Options Volume");

    let alert = json!({"alert-external-id": "A-1", "symbol": "AAPL", "threshold": "240.00", "expires-at": 1_751_328_000_000_i64});
    gw.sim_post(
        "/sim/events",
        json!({"channel": "quote-alerts", "type": "QuoteAlert", "data": alert}),
    )
    .await;
    let received = user.next_of("QuoteAlert", FIVE_SECONDS).await;
    assert_eq!(received.data["data"], alert);
    assert_eq!(received.data["source"], "stream");
    gw.sim_post("/sim/events", json!({"channel": "user-messages", "type": "UserMessage", "data": {"text": "margin call cleared"}})).await;
    assert_eq!(
        user.next_of("UserMessage", FIVE_SECONDS).await.data["data"]["text"],
        "margin call cleared"
    );

    // The combined stream carries it too, and the accounts' streams do not.
    let mut all = gw.sse("/v1/events", None).await;
    let mut individual = gw.sse("/v1/accounts/individual/events", None).await;
    assert_eq!(individual.next(FIVE_SECONDS).await.event, "snapshot");
    gw.sim_post("/sim/events", json!({"channel": "quote-alerts", "type": "QuoteAlert", "data": {"alert-external-id": "A-2"}})).await;
    let merged = all.next_of("QuoteAlert", FIVE_SECONDS).await;
    assert_eq!(merged.data["data"]["alert-external-id"], "A-2");
    assert!(merged.id.contains(".user."), "{}", merged.id);
    let leaked: Vec<_> = individual
        .drain(Duration::from_millis(300))
        .await
        .into_iter()
        .filter(|e| e.event == "QuoteAlert")
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");

    let stats = gw.sim_get("/sim/stats").await;
    assert_eq!(
        stats["error_replies"], 0,
        "subscriptions were sent after connect: {stats}"
    );
    assert_eq!(gw.get("/readyz").await.0, 200);
    drop((user, all, individual));
    gw.assert_no_leaks();
    gw.stop().await;
}
