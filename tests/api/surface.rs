//! The surface people touch, over real sockets: every REST route's success and error bodies,
//! ETag/304, CORS for listed and unlisted origins, the offline Swagger UI, /readyz flipping
//! with the upstream, /metrics, the dashboard page, and SSE over TLS + HTTP/2.

use std::time::Duration;

use crate::helpers::gateway::{TestGateway, config};
use crate::helpers::{INDIVIDUAL, SECOND, wait_until};
use serde_json::{Value, json};

async fn get_with(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = gw.http.get(format!("{}{path}", gw.url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("gateway answers")
}

fn error_body(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

#[tokio::test]
async fn every_part_route_answers_with_seq_as_of_and_its_part() {
    let gw = TestGateway::start(&[]).await;
    let (_, snapshot) = gw.get("/v1/accounts/individual/snapshot").await;
    let seq = snapshot["seq"].clone();

    let (status, body) = gw.get("/v1/accounts/individual/balance").await;
    assert_eq!(status, 200);
    assert_eq!(body["account"], "individual");
    assert_eq!(body["seq"], seq);
    assert!(body["as_of"].as_str().is_some());
    assert_eq!(body["balance"], snapshot["balance"]);
    assert_eq!(
        body["balance"]["cash-balance"], "40506.72",
        "money stays a decimal string"
    );
    assert_eq!(body["balance"]["account-number"], "***1842");

    let (status, body) = gw.get("/v1/accounts/individual/positions").await;
    assert_eq!(status, 200);
    assert_eq!(body["positions"], snapshot["positions"]);
    let symbols = |body: &Value| {
        body["positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["symbol"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let (_, spy) = gw
        .get("/v1/accounts/individual/positions?underlying=spy")
        .await;
    assert_eq!(symbols(&spy), vec!["SPY", "SPY   270115C00600000"]);
    let (_, options) = gw
        .get("/v1/accounts/individual/positions?instrument_type=Equity%20Option")
        .await;
    assert_eq!(
        symbols(&options),
        vec!["MCD   270115P00305000", "SPY   270115C00600000"]
    );
    let (_, both) = gw
        .get("/v1/accounts/individual/positions?underlying=SPY&instrument_type=Equity")
        .await;
    assert_eq!(symbols(&both), vec!["SPY"]);

    let ids = |body: &Value| {
        body["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    let (status, working) = gw.get("/v1/accounts/individual/orders").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&working), vec![300_101], "working orders by default");
    let (_, all) = gw.get("/v1/accounts/individual/orders?status=all").await;
    assert_eq!(
        ids(&all),
        vec![300_101, 300_102],
        "today's orders, terminal ones too"
    );
    let (_, cancelled) = gw
        .get("/v1/accounts/individual/orders?status=Cancelled")
        .await;
    assert_eq!(ids(&cancelled), vec![300_102]);

    let (status, body) = gw.get("/v1/accounts/individual/complex-orders").await;
    assert_eq!(status, 200);
    assert_eq!(body["complex_orders"], json!([]));
    let (status, body) = gw.get("/v1/accounts/roth-ira/trading-status").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["trading_status"]["options-level"],
        "Covered And Cash Secured"
    );
    assert_eq!(body["account"], "roth-ira");
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn errors_have_one_shape_and_name_the_problem() {
    let gw = TestGateway::start(&[]).await;
    let statuses = "Received, Routed, In Flight, Live, Filled, Cancelled, Expired, Rejected, Contingent, Cancel Requested, Replace Requested, Removed, Partially Removed";
    let cases = [
        (
            "/v1/accounts/nope/balance",
            404,
            error_body(
                "unknown_account",
                "no account with that id; GET /v1/accounts lists them",
            ),
        ),
        (
            &format!("/v1/accounts/{INDIVIDUAL}/orders"),
            404,
            error_body(
                "unknown_account",
                "no account with that id; GET /v1/accounts lists them",
            ),
        ),
        (
            "/v1/accounts/individual/orders?status=Done",
            400,
            error_body(
                "bad_request",
                &format!("status must be `working`, `all` or a comma list of: {statuses}"),
            ),
        ),
        (
            "/v1/accounts/individual/positions?symbol=SPY",
            400,
            error_body(
                "bad_request",
                "unknown query parameter(s) symbol; accepted: underlying, instrument_type",
            ),
        ),
        (
            "/v1/accounts/individual/balance?x=1&a=2",
            400,
            error_body(
                "bad_request",
                "unknown query parameter(s) a, x; accepted: none",
            ),
        ),
    ];
    for (path, status, body) in cases {
        let (got_status, got_body) = gw.get(path).await;
        assert_eq!((got_status, got_body), (status, body), "{path}");
    }
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn etag_turns_a_poll_into_a_304_until_something_changes() {
    let gw = TestGateway::start(&[]).await;
    for path in [
        "/v1/accounts/individual/snapshot",
        "/v1/accounts/individual/balance",
        "/v1/accounts/individual/orders",
    ] {
        let first = get_with(&gw, path, &[]).await;
        assert_eq!(first.status(), 200);
        let tag = first.headers()["etag"].to_str().unwrap().to_string();
        let (_, snapshot) = gw.get("/v1/accounts/individual/snapshot").await;
        assert_eq!(
            tag,
            format!(
                "\"{}-{}\"",
                snapshot["epoch"].as_str().unwrap(),
                snapshot["seq"]
            )
        );
        let again = get_with(&gw, path, &[("if-none-match", &tag)]).await;
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), tag);
        assert!(again.bytes().await.unwrap().is_empty());
    }
    let (_, before) = gw.get("/v1/accounts/individual/snapshot").await;
    let old_tag = format!(
        "\"{}-{}\"",
        before["epoch"].as_str().unwrap(),
        before["seq"]
    );
    gw.inject(
        INDIVIDUAL,
        "Order",
        json!({"id": 660_001, "status": "Live", "updated-at": 4_102_444_800_000_i64}),
    )
    .await;
    wait_until("the change to bump the ETag", 5 * SECOND, || async {
        get_with(
            &gw,
            "/v1/accounts/individual/snapshot",
            &[("if-none-match", &old_tag)],
        )
        .await
        .status()
            == 200
    })
    .await;
    gw.stop().await;
}

#[tokio::test]
async fn cors_answers_listed_origins_only() {
    let gw = TestGateway::start(&["--cors-origins", "https://app.example.com"]).await;
    let preflight = |origin: &'static str| {
        gw.http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/accounts/individual/snapshot", gw.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header(
                "access-control-request-headers",
                "authorization,last-event-id",
            )
            .send()
    };
    let listed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(listed.headers()["access-control-allow-credentials"], "true");
    let allowed_headers = listed.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed_headers.contains("authorization") && allowed_headers.contains("last-event-id"),
        "{allowed_headers}"
    );
    let unlisted = preflight("https://evil.example.net").await.unwrap();
    // No Access-Control-Allow-Origin: the browser refuses the response, credentials or not.
    assert!(
        unlisted
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let get = get_with(
        &gw,
        "/v1/accounts/individual/balance",
        &[("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(
        get.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(
        get.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_lowercase()
            .contains("etag")
    );
    let sse = get_with(
        &gw,
        "/v1/accounts/individual/events",
        &[("origin", "https://app.example.com")],
    )
    .await;
    assert_eq!(sse.status(), 200);
    assert_eq!(
        sse.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    drop(sse);
    let other = get_with(
        &gw,
        "/v1/accounts/individual/balance",
        &[("origin", "https://evil.example.net")],
    )
    .await;
    assert!(other.headers().get("access-control-allow-origin").is_none());

    // WebSocket upgrades carry no CORS: the gateway checks Origin itself.
    let ws_url = format!("{}/v1/ws", gw.url.replace("http://", "ws://"));
    let upgrade = |origin: Option<&'static str>| {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                ws_url.as_str(),
            )
            .unwrap();
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request)
    };
    assert!(upgrade(Some("https://app.example.com")).await.is_ok());
    assert!(
        upgrade(None).await.is_ok(),
        "non-browser clients send no Origin"
    );
    match upgrade(Some("https://evil.example.net")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("an unlisted origin must get 403, got {other:?}"),
    }
    gw.stop().await;
}

#[tokio::test]
async fn swagger_ui_and_its_scripts_come_from_the_binary() {
    let gw = TestGateway::start(&[]).await;
    let page = get_with(&gw, "/docs/", &[]).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external URL in the page"
    );
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            assets.push(part.split('"').next().unwrap().to_string());
        }
    }
    assert!(
        assets.iter().any(|a| a.ends_with("swagger-ui-bundle.js")),
        "{assets:?}"
    );
    for asset in &assets {
        let path = format!("/docs/{}", asset.trim_start_matches("./"));
        let response = get_with(&gw, &path, &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
    let initializer = get_with(&gw, "/docs/swagger-initializer.js", &[])
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"), "{initializer}");
    assert!(
        initializer.contains("\"validatorUrl\": \"none\"")
            || initializer.contains("\"validatorUrl\":\"none\""),
        "{initializer}"
    );
    let (status, openapi) = gw.get("/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(
        openapi,
        serde_json::to_value(tastytrade_gateway::api::openapi()).unwrap()
    );
    gw.stop().await;
}

#[tokio::test]
async fn readyz_flips_to_503_when_the_upstream_drops_and_back() {
    let gw = TestGateway::start(&["--backoff-cap-secs", "1", "--heartbeat-secs", "2"]).await;
    let (status, body) = gw.get("/readyz").await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "ok", "reasons": [], "degraded": []}))
    );
    // A few failing REST calls keep the resync from finishing for a while.
    gw.sim_post(
        "/sim/faults/rest-errors",
        json!({"count": 4, "status": 500}),
    )
    .await;
    gw.sim_post("/sim/faults/drop", json!({})).await;
    let deadline = tokio::time::Instant::now() + 5 * SECOND;
    let unready = loop {
        let (status, body) = gw.get("/readyz").await;
        if status == 503 {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never answered 503"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(unready["status"], "unavailable");
    let reasons = unready["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty());
    assert!(
        reasons
            .iter()
            .all(|r| r.as_str().unwrap().starts_with("individual: ")
                || r.as_str().unwrap().starts_with("roth-ira: ")),
        "{reasons:?}"
    );
    wait_until("every account live again", 10 * SECOND, || async {
        gw.get("/healthz").await.1["status"] == "ok"
    })
    .await;
    assert_eq!(gw.get("/readyz").await.0, 200);
    assert_eq!(
        gw.get("/healthz").await,
        (200, json!({"status": "ok", "reasons": [], "degraded": []}))
    );
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn metrics_use_public_ids_only() {
    let gw = TestGateway::start(&[]).await;
    let mut sse = gw.sse("/v1/accounts/individual/events", None).await;
    assert_eq!(sse.next(5 * SECOND).await.event, "snapshot");
    gw.inject(
        INDIVIDUAL,
        "Order",
        json!({"id": 660_002, "status": "Live", "updated-at": 4_102_444_800_000_i64}),
    )
    .await;
    assert_eq!(
        sse.next_of("Order", 5 * SECOND).await.data["data"]["id"],
        660_002
    );
    let response = get_with(&gw, "/metrics", &[]).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    gw.record(text.as_bytes());
    for needle in [
        "ttgw_events_published_total{account=\"individual\",type=\"Order\"}",
        "ttgw_events_delivered_total{transport=\"sse\",type=\"Order\"}",
        "ttgw_subscribers{transport=\"sse\"}",
        // Every gateway of this test process shares one recorder: the value is theirs too.
        "ttgw_upstream_state{account=\"individual\",state=\"live\"}",
        "ttgw_stream_starts_total{transport=\"sse\",start=\"snapshot\"}",
        "ttgw_event_lag_seconds_bucket{transport=\"sse\"",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    drop(sse);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[tokio::test]
async fn the_dashboard_page_is_served_from_the_binary() {
    let gw = TestGateway::start(&[]).await;
    let page = get_with(&gw, "/", &[]).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("import { AccountStream } from \"/client.js\";"));
    let client = get_with(&gw, "/client.js", &[]).await;
    assert_eq!(client.status(), 200);
    assert!(
        client.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let bundle = client.text().await.unwrap();
    assert_eq!(
        bundle,
        include_str!("../../src/api/dashboard/client.js"),
        "the binary serves the checked-in client bundle"
    );
    assert!(
        bundle.contains("AccountStream = class"),
        "the client's bundle"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN, no external URL"
    );
    gw.stop().await;
}

#[tokio::test]
async fn sse_over_tls_and_http2() {
    let dir = std::env::temp_dir().join(format!("ttgw-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();

    let config = config(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let gateway = tastytrade_gateway::startup::start(config)
        .await
        .expect("gateway starts with TLS");
    assert!(gateway.url().starts_with("https://"));
    let base = format!("https://localhost:{}", gateway.addr.port());
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    wait_until("accounts live over TLS", 15 * SECOND, || async {
        let Ok(response) = client.get(format!("{base}/readyz")).send().await else {
            return false;
        };
        response.status() == 200
    })
    .await;
    let response = client
        .get(format!("{base}/v1/accounts/individual/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.version(),
        reqwest::Version::HTTP_2,
        "ALPN negotiated HTTP/2"
    );
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    use eventsource_stream::Eventsource;
    use futures::StreamExt;
    let mut events = response.bytes_stream().eventsource();
    let first = tokio::time::timeout(5 * SECOND, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.event, "snapshot");
    let sim = gateway.sim.as_ref().unwrap().api_url();
    let injected = reqwest::Client::new()
        .post(format!("{sim}/sim/accounts/{INDIVIDUAL}/events"))
        .json(&json!({"type": "Order", "data": {"id": 660_003, "status": "Live", "updated-at": 4_102_444_800_000_i64}}))
        .send()
        .await
        .unwrap();
    assert!(injected.status().is_success());
    let event = tokio::time::timeout(5 * SECOND, async {
        loop {
            let event = events.next().await.unwrap().unwrap();
            if event.event == "Order" {
                return event;
            }
        }
    })
    .await
    .unwrap();
    let envelope: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(envelope["data"]["id"], 660_003);
    drop(events);
    gateway.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn one_degraded_account_keeps_the_node_ready_and_is_named() {
    let gw = TestGateway::start(&["--heartbeat-secs", "2"]).await;
    assert_eq!(gw.get("/livez").await.0, 200);
    // The Roth IRA's tastytrade side is down for a minute; the individual account is fine.
    gw.sim_post(
        "/sim/faults/outage",
        json!({"secs": 60, "account": "5WU09822"}),
    )
    .await;
    wait_until("roth-ira degraded", 10 * SECOND, || async {
        gw.get("/healthz").await.1["degraded"] == json!(["roth-ira"])
    })
    .await;
    let (status, health) = gw.get("/healthz").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "degraded");
    assert!(
        health["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("roth-ira: "),
        "{health}"
    );
    let (status, ready) = gw.get("/readyz").await;
    assert_eq!(
        status, 200,
        "one live account keeps the node ready: {ready}"
    );
    assert_eq!(ready["status"], "degraded");
    assert_eq!(ready["degraded"], json!(["roth-ira"]));
    let (_, accounts) = gw.get("/v1/accounts").await;
    let health_of = |id: &str| {
        accounts["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .map(|a| a["health"].clone())
    };
    assert_eq!(health_of("individual"), Some(json!("ok")));
    assert_eq!(health_of("roth-ira"), Some(json!("degraded")));
    assert_eq!(gw.get("/livez").await.0, 200);
    gw.sim_delete("/sim/faults").await;
    gw.stop().await;

    // With --ready-requires all, the same fault makes the node unready.
    let strict = TestGateway::start(&["--heartbeat-secs", "2", "--ready-requires", "all"]).await;
    strict
        .sim_post(
            "/sim/faults/outage",
            json!({"secs": 60, "account": "5WU09822"}),
        )
        .await;
    wait_until(
        "/readyz 503 with --ready-requires all",
        10 * SECOND,
        || async { strict.get("/readyz").await.0 == 503 },
    )
    .await;
    strict.sim_delete("/sim/faults").await;
    strict.stop().await;
}
