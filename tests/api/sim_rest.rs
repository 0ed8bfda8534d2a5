//! Black-box tests of the simulator's tastytrade REST API: OAuth and session login, the
//! User-Agent rule, token checks, and the customer, account and per-account baseline endpoints.

use std::time::Duration;

use crate::helpers::sim::{SimConfig, SimCredentials, TestSim, paused_config};
use crate::helpers::{CLOSED, INDIVIDUAL, ROTH, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn token_invalid() -> Value {
    json!({"error": {"code": "token_invalid", "message": "This token is invalid or has expired"}})
}

fn missing_user_agent() -> Value {
    json!({"error": {"code": "missing_user_agent", "message": "A User-Agent header is required"}})
}

fn account_not_found() -> Value {
    json!({"error": {"code": "record_not_found", "message": "Account not found"}})
}

async fn post_json(client: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.expect("POST");
    let status = response.status();
    (status, response.json().await.expect("JSON reply"))
}

fn refresh_body(secret: &str) -> Value {
    json!({
        "grant_type": "refresh_token",
        "refresh_token": SimCredentials::default().refresh_token,
        "client_secret": secret,
    })
}

#[tokio::test]
async fn oauth_token_issues_bearer_tokens_with_the_configured_ttl() {
    let sim = TestSim::start(SimConfig {
        paused: true,
        token_ttl: Duration::from_secs(123),
        ..SimConfig::default()
    })
    .await;
    let creds = SimCredentials::default();

    let (status, body) = post_json(
        &sim.http,
        sim.url("/oauth/token"),
        refresh_body(&creds.client_secret),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let token = body["access_token"].as_str().expect("access_token string");
    assert!(!token.is_empty());
    assert_eq!(
        body,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": 123})
    );
    // The token works as `Bearer <access token>`.
    let accounts = sim
        .get_ok("/customers/me/accounts", &format!("Bearer {token}"))
        .await;
    assert_eq!(accounts["data"]["items"].as_array().map(Vec::len), Some(3));

    // A second grant mints a different token.
    let (_, again) = post_json(
        &sim.http,
        sim.url("/oauth/token"),
        refresh_body(&creds.client_secret),
    )
    .await;
    assert_ne!(again["access_token"], body["access_token"]);

    let (status, body) = post_json(&sim.http, sim.url("/oauth/token"), refresh_body("wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "error_description": "Invalid refresh token or client secret"})
    );

    let mut wrong_refresh = refresh_body(&creds.client_secret);
    wrong_refresh["refresh_token"] = json!("not-the-refresh-token");
    let (status, _) = post_json(&sim.http, sim.url("/oauth/token"), wrong_refresh).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let mut wrong_grant = refresh_body(&creds.client_secret);
    wrong_grant["grant_type"] = json!("password");
    let (status, body) = post_json(&sim.http, sim.url("/oauth/token"), wrong_grant).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"error": "unsupported_grant_type", "error_description": "Only the refresh_token grant is supported"})
    );

    assert_eq!(sim.stat("tokens_issued").await, 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn sessions_login_with_good_and_bad_credentials() {
    let sim = TestSim::paused().await;
    let creds = SimCredentials::default();

    let (status, body) = post_json(
        &sim.http,
        sim.url("/sessions"),
        json!({"login": creds.login, "password": creds.password, "remember-me": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["context"], json!("/sessions"));
    let data = &body["data"];
    let token = data["session-token"].as_str().expect("session-token");
    assert!(!token.is_empty());
    assert_eq!(
        data["user"],
        json!({"email": "demo@example.invalid", "username": "demotrader", "external-id": "U0001234567", "is-confirmed": true})
    );
    let expiration = data["session-expiration"]
        .as_str()
        .expect("session-expiration");
    assert!(
        expiration.ends_with('Z') && expiration.len() == 24,
        "{expiration}"
    );
    let remember = data["remember-token"]
        .as_str()
        .expect("remember-token")
        .to_string();

    // The raw session token authorizes REST calls.
    let me = sim.get_ok("/customers/me", token).await;
    assert_eq!(me["data"]["external-id"], json!("U0001234567"));

    // Re-login with the remember token.
    let (status, body) = post_json(
        &sim.http,
        sim.url("/sessions"),
        json!({"login": creds.login, "remember-token": remember, "remember-me": true}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(body["data"]["session-token"], json!(token));

    let bad = json!({"error": {"code": "invalid_credentials", "message": "Invalid login, please check your username and password"}});
    for wrong in [
        json!({"login": creds.login, "password": "wrong-password"}),
        json!({"login": "someone-else", "password": creds.password}),
        json!({"login": creds.login}),
    ] {
        let (status, body) = post_json(&sim.http, sim.url("/sessions"), wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, bad);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn every_endpoint_requires_a_user_agent() {
    let sim = TestSim::paused().await;
    let creds = SimCredentials::default();
    let bearer = sim.bearer().await;

    let response = sim
        .http_no_agent
        .post(sim.url("/oauth/token"))
        .json(&refresh_body(&creds.client_secret))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        missing_user_agent()
    );

    let response = sim
        .http_no_agent
        .post(sim.url("/sessions"))
        .json(&json!({"login": creds.login, "password": creds.password}))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        missing_user_agent()
    );

    for path in [
        "/customers/me".to_string(),
        "/customers/me/accounts".to_string(),
        format!("/accounts/{INDIVIDUAL}/balances"),
        format!("/accounts/{INDIVIDUAL}/positions"),
        format!("/accounts/{INDIVIDUAL}/orders/live"),
        format!("/accounts/{INDIVIDUAL}/trading-status"),
    ] {
        let response = sim
            .http_no_agent
            .get(sim.url(&path))
            .header("Authorization", &bearer)
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            missing_user_agent(),
            "{path}"
        );
    }

    // An empty User-Agent is no User-Agent.
    let response = sim
        .http_no_agent
        .get(sim.url("/customers/me"))
        .header("Authorization", &bearer)
        .header("User-Agent", " ")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A bare product name (the JS SDK's `tastytrade-sdk-js`) is enough.
    let response = sim
        .http_no_agent
        .get(sim.url("/customers/me"))
        .header("Authorization", &bearer)
        .header("User-Agent", "tastytrade-sdk-js")
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn missing_wrong_and_misused_tokens_are_refused() {
    let sim = TestSim::paused().await;
    let access = sim.access_token().await;
    let session = sim.session_token().await;

    // No Authorization header at all.
    let response = sim
        .http
        .get(sim.url("/customers/me/accounts"))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.json::<Value>().await.unwrap(), token_invalid());

    for auth in [
        "Bearer not-a-token".to_string(),
        "not-a-token".to_string(),
        String::new(),
        // An access token without `Bearer`, and a session token with it.
        access.clone(),
        format!("Bearer {session}"),
        format!("bearer {access}"),
    ] {
        let (status, body) = sim.get("/customers/me/accounts", &auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "auth {auth:?}");
        assert_eq!(body, token_invalid(), "auth {auth:?}");
    }

    // The two good forms.
    for auth in [format!("Bearer {access}"), session.clone()] {
        let (status, _) = sim.get("/customers/me/accounts", &auth).await;
        assert_eq!(status, StatusCode::OK, "auth {auth:?}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn expire_tokens_fault_expires_access_and_session_tokens() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let session = sim.session_token().await;
    let path = format!("/accounts/{INDIVIDUAL}/balances");
    assert_eq!(sim.get(&path, &bearer).await.0, StatusCode::OK);

    let (status, reply) = sim.control("/sim/faults/expire-tokens", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"armed": "expire-tokens"}));

    for auth in [&bearer, &session] {
        let (status, body) = sim.get(&path, auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, token_invalid());
    }
    // Tokens minted afterwards are fine.
    let fresh = sim.bearer().await;
    assert_eq!(sim.get(&path, &fresh).await.0, StatusCode::OK);
    sim.shutdown().await;
}

#[tokio::test]
async fn access_tokens_expire_after_their_ttl() {
    let sim = TestSim::start(SimConfig {
        paused: true,
        token_ttl: Duration::from_secs(1),
        ..SimConfig::default()
    })
    .await;
    let bearer = sim.bearer().await;
    let issued = std::time::Instant::now();
    assert_eq!(sim.get("/customers/me", &bearer).await.0, StatusCode::OK);

    wait_until(
        "the 1 s access token expires",
        Duration::from_secs(5),
        || async { sim.get("/customers/me", &bearer).await.0 == StatusCode::UNAUTHORIZED },
    )
    .await;
    assert!(issued.elapsed() >= Duration::from_millis(900));
    let (status, body) = sim.get("/customers/me", &bearer).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, token_invalid());
    sim.shutdown().await;
}

#[tokio::test]
async fn customer_and_accounts() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;

    let body = sim.get_ok("/customers/me/accounts", &bearer).await;
    assert_eq!(body["context"], json!("/customers/me/accounts"));
    assert!(body.get("pagination").is_none());
    let items = body["data"]["items"].as_array().expect("items");
    let summary: Vec<(Value, Value, Value, Value)> = items
        .iter()
        .map(|item| {
            assert_eq!(item.as_object().map(|o| o.len()), Some(2), "{item}");
            (
                item["account"]["account-number"].clone(),
                item["authority-level"].clone(),
                item["account"]["is-closed"].clone(),
                item["account"]["account-type-name"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                json!(INDIVIDUAL),
                json!("owner"),
                json!(false),
                json!("Individual")
            ),
            (json!(ROTH), json!("owner"), json!(false), json!("Roth IRA")),
            (
                json!(CLOSED),
                json!("owner"),
                json!(true),
                json!("Individual")
            ),
        ]
    );
    assert_eq!(items[0]["account"]["margin-or-cash"], json!("Margin"));
    assert_eq!(items[1]["account"]["margin-or-cash"], json!("Cash"));

    let me = sim.get_ok("/customers/me", &bearer).await;
    assert_eq!(me["context"], json!("/customers/me"));
    let data = &me["data"];
    assert_eq!(data["id"], json!("me"));
    assert_eq!(data["external-id"], json!("U0001234567"));
    assert_eq!(data["username"], json!("demotrader"));
    assert_eq!(data["email"], json!("demo@example.invalid"));
    assert_eq!(data["user-id"], json!("99"));
    assert_eq!(data["address"]["city"], json!("Chicago"));
    assert_eq!(
        data["permitted-account-types"]
            .as_array()
            .map(|t| t.iter().map(|t| t["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("Individual"), json!("Roth IRA")])
    );
    sim.shutdown().await;
}

/// Asserts that `object` has every one of `fields`, each non-null.
fn assert_fields(object: &Value, fields: &[&str], what: &str) {
    let missing: Vec<&&str> = fields
        .iter()
        .filter(|f| object.get(**f).is_none_or(Value::is_null))
        .collect();
    assert!(missing.is_empty(), "{what} lacks {missing:?}: {object}");
}

/// tastyware (`tastytrade` 13.x) refuses a `Customer` or an `AccountBalance` without any of
/// the fields its models require; shared/protocol §3.5 and §8 list them as tastytrade's.
#[tokio::test]
async fn customer_and_balance_carry_every_field_tastyware_requires() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;

    let me = sim.get_ok("/customers/me", &bearer).await;
    let customer = &me["data"];
    assert_fields(
        customer,
        &[
            "id",
            "first-name",
            "last-name",
            "address",
            "mailing-address",
            "is-foreign",
            "usa-citizenship-type",
            "mobile-phone-number",
            "birth-date",
            "email",
            "tax-number-type",
            "subject-to-tax-withholding",
            "has-industry-affiliation",
            "has-listed-affiliation",
            "has-political-affiliation",
            "has-delayed-quotes",
            "has-pending-or-approved-application",
            "is-professional",
            "permitted-account-types",
            "created-at",
        ],
        "customer",
    );
    assert_eq!(customer["tax-number-type"], json!("SSN"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(customer["created-at"].as_str().expect("string"))
            .is_ok(),
        "created-at is an ISO timestamp: {customer}"
    );
    assert_fields(
        &customer["person"],
        &[
            "external-id",
            "first-name",
            "last-name",
            "citizenship-country",
            "usa-citizenship-type",
            "employment-status",
            "marital-status",
            "number-of-dependents",
        ],
        "customer person",
    );
    assert_fields(
        &customer["customer-suitability"],
        &[
            "id",
            "annual-net-income",
            "covered-options-trading-experience",
            "employment-status",
            "futures-trading-experience",
            "liquid-net-worth",
            "marital-status",
            "net-worth",
            "number-of-dependents",
            "stock-trading-experience",
            "uncovered-options-trading-experience",
        ],
        "customer suitability",
    );

    for account in [INDIVIDUAL, ROTH, CLOSED] {
        let body = sim
            .get_ok(&format!("/accounts/{account}/balances/USD"), &bearer)
            .await;
        let balance = &body["data"];
        assert_fields(
            balance,
            &[
                "account-number",
                "cash-balance",
                "long-equity-value",
                "short-equity-value",
                "long-derivative-value",
                "short-derivative-value",
                "long-futures-value",
                "short-futures-value",
                "long-futures-derivative-value",
                "short-futures-derivative-value",
                "long-margineable-value",
                "short-margineable-value",
                "margin-equity",
                "equity-buying-power",
                "derivative-buying-power",
                "day-trading-buying-power",
                "futures-margin-requirement",
                "available-trading-funds",
                "maintenance-requirement",
                "maintenance-call-value",
                "reg-t-call-value",
                "day-trading-call-value",
                "day-equity-call-value",
                "net-liquidating-value",
                "cash-available-to-withdraw",
                "day-trade-excess",
                "pending-cash",
                "long-cryptocurrency-value",
                "short-cryptocurrency-value",
                "cryptocurrency-margin-requirement",
                "unsettled-cryptocurrency-fiat-amount",
                "closed-loop-available-balance",
                "equity-offering-margin-requirement",
                "long-bond-value",
                "bond-margin-requirement",
                "used-derivative-buying-power",
                "snapshot-date",
                "reg-t-margin-requirement",
                "futures-overnight-margin-requirement",
                "futures-intraday-margin-requirement",
                "maintenance-excess",
                "pending-margin-interest",
                "effective-cryptocurrency-buying-power",
                "updated-at",
            ],
            account,
        );
        assert_eq!(
            balance["unsettled-cryptocurrency-fiat-amount"],
            json!("0.0")
        );
        assert_eq!(
            balance["unsettled-cryptocurrency-fiat-effect"],
            json!("None")
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn balances_in_both_paths() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;

    let body = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/balances"), &bearer)
        .await;
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "data + context");
    assert_eq!(
        body["context"],
        json!(format!("/accounts/{INDIVIDUAL}/balances"))
    );
    let balance = &body["data"];
    assert_eq!(balance["account-number"], json!(INDIVIDUAL));
    assert_eq!(balance["currency"], json!("USD"));
    assert_eq!(balance["cash-balance"], json!("40506.72"));
    assert_eq!(balance["long-equity-value"], json!("82743.17"));
    assert_eq!(balance["long-derivative-value"], json!("1250.0"));
    assert_eq!(balance["short-derivative-value"], json!("435.0"));
    assert_eq!(balance["net-liquidating-value"], json!("124064.89"));
    assert_eq!(balance["equity-buying-power"], json!("81013.44"));
    assert_eq!(balance["pending-cash-effect"], json!("None"));
    assert_eq!(balance["short-equity-value"], json!("0.0"));

    let usd = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/balances/USD"), &bearer)
        .await;
    assert_eq!(usd["data"], body["data"]);
    assert_eq!(
        usd["context"],
        json!(format!("/accounts/{INDIVIDUAL}/balances/USD"))
    );

    let roth = sim
        .get_ok(&format!("/accounts/{ROTH}/balances"), &bearer)
        .await;
    assert_eq!(roth["data"]["cash-balance"], json!("18250.4"));
    assert_eq!(roth["data"]["net-liquidating-value"], json!("92570.4"));

    let (status, body) = sim
        .get(&format!("/accounts/{INDIVIDUAL}/balances/EUR"), &bearer)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": {"code": "record_not_found", "message": "Balance not found"}})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn positions_cover_fractional_options_futures_options_long_and_short() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;

    let body = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/positions"), &bearer)
        .await;
    assert_eq!(
        body["context"],
        json!(format!("/accounts/{INDIVIDUAL}/positions"))
    );
    assert!(body.get("pagination").is_none());
    let items = body["data"]["items"].as_array().expect("items");
    let rows: Vec<Value> = items
        .iter()
        .map(|p| {
            json!([
                p["symbol"],
                p["instrument-type"],
                p["quantity"],
                p["quantity-direction"],
                p["multiplier"]
            ])
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            json!(["SPY", "Equity", "100.29", "Long", "1"]),
            json!(["AAPL", "Equity", "50", "Long", "1"]),
            json!([
                "MCD   270115P00305000",
                "Equity Option",
                "1",
                "Short",
                "100"
            ]),
            json!(["SPY   270115C00600000", "Equity Option", "2", "Long", "100"]),
            // A futures option's multiplier is a JSON number.
            json!(["./ESZ6 EW4Z6 261218C6000", "Future Option", "1", "Long", 50]),
        ]
    );
    for p in items {
        assert_eq!(p["account-number"], json!(INDIVIDUAL));
    }
    let spy = &items[0];
    assert_eq!(spy["average-open-price"], json!("512.4"));
    assert_eq!(spy["cost-effect"], json!("Debit"));
    assert!(spy.get("expires-at").is_none());
    let short_put = &items[2];
    assert_eq!(short_put["cost-effect"], json!("Credit"));
    assert_eq!(short_put["underlying-symbol"], json!("MCD"));
    assert_eq!(short_put["streamer-symbol"], json!(".MCD270115P305"));
    assert_eq!(
        short_put["expires-at"],
        json!("2027-01-15T21:15:00.000+00:00")
    );
    assert_eq!(items[4]["underlying-symbol"], json!("/ESZ6"));

    let roth = sim
        .get_ok(&format!("/accounts/{ROTH}/positions"), &bearer)
        .await;
    let symbols: Vec<&Value> = roth["data"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| &p["symbol"])
        .collect();
    assert_eq!(
        symbols,
        vec![
            &json!("VTI"),
            &json!("MSFT"),
            &json!("QQQ   270115P00450000")
        ]
    );

    let closed = sim
        .get_ok(&format!("/accounts/{CLOSED}/positions"), &bearer)
        .await;
    assert_eq!(
        closed,
        json!({"data": {"items": []}, "context": format!("/accounts/{CLOSED}/positions")})
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn live_orders_paginate() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    let context = json!(format!("/accounts/{INDIVIDUAL}/orders/live"));

    let body = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/orders/live"), &bearer)
        .await;
    assert_eq!(body["context"], context);
    let items = body["data"]["items"].as_array().expect("items");
    let summary: Vec<Value> = items
        .iter()
        .map(|o| json!([o["id"], o["status"], o["underlying-symbol"], o["size"]]))
        .collect();
    assert_eq!(
        summary,
        vec![
            json!([300101, "Live", "AAPL", 10]),
            json!([300102, "Cancelled", "MSFT", 5])
        ]
    );
    assert_eq!(
        body["pagination"],
        json!({"per-page": 100, "page-offset": 0, "item-offset": 0, "total-items": 2, "total-pages": 1,
            "current-item-count": 2, "previous-link": null, "next-link": null, "paging-link-template": null})
    );
    let live = &items[0];
    assert_eq!(live["price"], json!("220.0"));
    assert_eq!(live["price-effect"], json!("Debit"));
    // tastyware parses `user-id` as a string: the simulator writes strings by default.
    assert_eq!(live["user-id"], json!("99"));
    assert!(live["updated-at"].is_i64());
    assert_eq!(live["legs"][0]["symbol"], json!("AAPL"));
    assert_eq!(live["legs"][0]["quantity"], json!(10));
    assert_eq!(live["legs"][0]["fills"], json!([]));
    assert_eq!(items[1]["user-id"], json!("99"));

    let page = sim
        .get_ok(
            &format!("/accounts/{INDIVIDUAL}/orders/live?per-page=1&page-offset=1"),
            &bearer,
        )
        .await;
    assert_eq!(page["context"], context);
    assert_eq!(page["data"]["items"], json!([items[1]]));
    assert_eq!(
        page["pagination"],
        json!({"per-page": 1, "page-offset": 1, "item-offset": 1, "total-items": 2, "total-pages": 2,
            "current-item-count": 1, "previous-link": null, "next-link": null, "paging-link-template": null})
    );

    let past_the_end = sim
        .get_ok(
            &format!("/accounts/{INDIVIDUAL}/orders/live?per-page=1&page-offset=2"),
            &bearer,
        )
        .await;
    assert_eq!(past_the_end["data"]["items"], json!([]));
    assert_eq!(past_the_end["pagination"]["current-item-count"], json!(0));

    let roth = sim
        .get_ok(&format!("/accounts/{ROTH}/orders/live"), &bearer)
        .await;
    let roth_items = roth["data"]["items"].as_array().expect("items");
    assert_eq!(roth_items.len(), 1);
    assert_eq!(roth_items[0]["id"], json!(300201));
    assert_eq!(roth_items[0]["legs"][0]["action"], json!("Sell to Close"));
    assert_eq!(roth_items[0]["price-effect"], json!("Credit"));
    sim.shutdown().await;
}

#[tokio::test]
async fn numeric_user_ids_setting_writes_a_number_in_one_demo_order() {
    let sim = TestSim::start(SimConfig {
        numeric_user_ids: true,
        ..paused_config()
    })
    .await;
    let bearer = sim.bearer().await;
    let body = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/orders/live"), &bearer)
        .await;
    let user_ids: Vec<(Value, Value)> = body["data"]["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| (o["id"].clone(), o["user-id"].clone()))
        .collect();
    assert_eq!(
        user_ids,
        vec![(json!(300101), json!(99)), (json!(300102), json!("99"))]
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn one_order_found_and_not_found() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;

    let body = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/orders/300101"), &bearer)
        .await;
    assert_eq!(
        body["context"],
        json!(format!("/accounts/{INDIVIDUAL}/orders/300101"))
    );
    let live = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/orders/live"), &bearer)
        .await;
    assert_eq!(body["data"], live["data"]["items"][0]);
    assert_eq!(body["data"]["id"], json!(300101));

    let not_found = json!({"error": {"code": "record_not_found", "message": "Order not found"}});
    for path in [
        format!("/accounts/{INDIVIDUAL}/orders/999999"),
        // An order of another account is not found under this one.
        format!("/accounts/{INDIVIDUAL}/orders/300201"),
    ] {
        let (status, body) = sim.get(&path, &bearer).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, not_found, "{path}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn complex_orders_and_trading_status() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;

    let complex = sim
        .get_ok(
            &format!("/accounts/{INDIVIDUAL}/complex-orders/live"),
            &bearer,
        )
        .await;
    assert_eq!(
        complex,
        json!({"data": {"items": []}, "context": format!("/accounts/{INDIVIDUAL}/complex-orders/live")})
    );

    let status = sim
        .get_ok(&format!("/accounts/{INDIVIDUAL}/trading-status"), &bearer)
        .await;
    assert_eq!(
        status["context"],
        json!(format!("/accounts/{INDIVIDUAL}/trading-status"))
    );
    let data = &status["data"];
    assert_eq!(data["id"], json!(15));
    assert_eq!(data["account-number"], json!(INDIVIDUAL));
    assert_eq!(data["options-level"], json!("No Restrictions"));
    assert_eq!(data["day-trade-count"], json!(0));
    assert_eq!(data["is-closed"], json!(false));
    assert_eq!(
        data["enhanced-fraud-safeguards-enabled-at"],
        json!("2016-12-29T22:51:13.729+00:00")
    );

    let roth = sim
        .get_ok(&format!("/accounts/{ROTH}/trading-status"), &bearer)
        .await;
    assert_eq!(roth["data"]["id"], json!(16));
    assert_eq!(
        roth["data"]["options-level"],
        json!("Covered And Cash Secured")
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_account_is_404_on_every_account_endpoint() {
    let sim = TestSim::paused().await;
    let bearer = sim.bearer().await;
    for suffix in [
        "balances",
        "balances/USD",
        "positions",
        "orders/live",
        "orders/300101",
        "complex-orders/live",
        "trading-status",
    ] {
        let path = format!("/accounts/5ZZ99999/{suffix}");
        let (status, body) = sim.get(&path, &bearer).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, account_not_found(), "{path}");
    }
    // The token is checked first.
    let (status, body) = sim.get("/accounts/5ZZ99999/balances", "Bearer nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, token_invalid());
    sim.shutdown().await;
}

/// The rate limit (`rest_rate`) answers like a broker's: once a second's worth of account
/// calls is spent, 429 with a `Retry-After` of whole seconds; other paths are not limited.
#[tokio::test]
async fn the_rest_rate_limit_answers_429_with_retry_after() {
    let sim = TestSim::start(SimConfig {
        rest_rate: 5.0,
        ..paused_config()
    })
    .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..12 {
        let response = sim
            .http
            .get(sim.url(&format!("/accounts/{INDIVIDUAL}/balances")))
            .header("User-Agent", "ttgw-test")
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
    }
    assert_eq!(
        statuses[0],
        StatusCode::UNAUTHORIZED,
        "within the limit the call is answered (no token: 401)"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "12 quick calls exceed 5 per second: {statuses:?}"
    );
    assert!(matches!(retry_after, Some(1..=2)), "{retry_after:?}");
    let token = sim
        .http
        .post(sim.url("/oauth/token"))
        .header("User-Agent", "ttgw-test")
        .json(&refresh_body(&SimCredentials::default().client_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(
        token.status(),
        StatusCode::OK,
        "only account calls are limited"
    );
}
