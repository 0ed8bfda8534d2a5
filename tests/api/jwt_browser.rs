//! The token cookie in a real browser: headless Chromium holds the gateway's HttpOnly
//! `ttgw_token` cookie (set over DevTools, as a backend's `Set-Cookie` would); a page on an
//! allowed origin (`--cors-origins`, another port) opens `EventSource(..., {withCredentials:
//! true})` and receives its token's accounts, and cannot read the cookie; a page on another
//! origin gets nothing. The gateway answers credentialed CORS with the exact origin only.

use std::time::Duration;

use serde_json::json;

use crate::helpers::browser::{Browser, required_chromium};
use crate::helpers::gateway::TestGateway;
use crate::helpers::streams::LeakScan;
use crate::helpers::tokens::{SECRET, claims, hs256};

/// The page: an EventSource with credentials to the gateway named in `?gateway=`.
const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>token cookie</title>
<script>
window.received = []; window.errors = 0;
const gateway = new URLSearchParams(location.search).get("gateway");
const source = new EventSource(gateway + "/v1/events", { withCredentials: true });
source.addEventListener("snapshot", (e) => window.received.push(JSON.parse(e.data).account));
source.onerror = () => { window.errors += 1; };
</script>"#;

/// Serves [`PAGE`] on 127.0.0.1; returns its origin.
async fn page_origin() -> String {
    let router = axum::Router::new().route(
        "/",
        axum::routing::get(|| async { axum::response::Html(PAGE) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    origin
}

#[tokio::test]
async fn an_event_source_with_the_token_cookie_works_from_an_allowed_origin_only() {
    let Some(binary) = required_chromium() else {
        return;
    };
    let (allowed, other) = (page_origin().await, page_origin().await);
    let flags = [
        "--api-key",
        "ops:t0ken:*",
        "--jwt-secret",
        SECRET,
        "--cors-origins",
        &allowed,
    ];
    let gw = TestGateway::start_as(&flags, Some("t0ken")).await;
    let token = hs256(&claims(&["individual"], 300));
    assert_cors(&gw, &token, &allowed, &other).await;

    let mut browser = Browser::launch(&binary, "token-cookie").await;
    let page = &mut browser.page;
    page.call("Network.enable", json!({})).await;
    page.call(
        "Network.setCookie",
        json!({"name": "ttgw_token", "value": token, "url": format!("{}/", gw.url),
               "httpOnly": true, "sameSite": "Lax"}),
    )
    .await;

    page.call(
        "Page.navigate",
        json!({"url": format!("{allowed}/?gateway={}", gw.url)}),
    )
    .await;
    page.wait_for(
        "window.received.includes('individual')",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(page.eval("window.received").await, json!(["individual"]));
    assert_eq!(
        page.eval("document.cookie.includes('ttgw_token')").await,
        json!(false)
    );

    page.call(
        "Page.navigate",
        json!({"url": format!("{other}/?gateway={}", gw.url)}),
    )
    .await;
    let refused = format!("location.origin === '{other}' && window.errors > 0");
    page.wait_for(&refused, Duration::from_secs(15)).await;
    assert_eq!(page.eval("window.received").await, json!([]));

    browser.close().await;
    gw.stop().await;
}

/// Credentialed CORS: the exact allowed origin and `true`, never `*`; nothing for another.
async fn assert_cors(gw: &TestGateway, token: &str, allowed: &str, other: &str) {
    let scan = LeakScan::new(&[token, SECRET]);
    for (origin, expected) in [(allowed, Some(allowed)), (other, None)] {
        let response = gw
            .http
            .get(format!("{}/v1/accounts", gw.url))
            .header("origin", origin)
            .header("cookie", format!("ttgw_token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the cookie authenticates");
        let headers = response.headers().clone();
        scan.scan("CORS headers", format!("{headers:?}").as_bytes());
        let echoed = headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap());
        assert_eq!(echoed, expected, "{origin}");
        let credentials = headers
            .get("access-control-allow-credentials")
            .map(|v| v.to_str().unwrap());
        assert_eq!(credentials, expected.map(|_| "true"), "{origin}");
        // The answer depends on Origin: a shared cache must not hand one origin's to another.
        let vary = headers
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",");
        assert!(
            vary.split(',').any(|name| name.trim() == "origin"),
            "{origin}: Vary: {vary}"
        );
        scan.scan("body", &response.bytes().await.unwrap());
    }
    scan.assert_clean(100);
}
