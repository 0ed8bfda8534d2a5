//! The dashboard in a real browser: headless Chromium (Debian `chromium`, installed by
//! `.ci/run`) loads `/`, renders the demo accounts from the snapshot, and shows a new value
//! after an event is injected through the simulator's `/sim/`. Driven over the Chrome
//! DevTools Protocol; a screenshot is saved to `target/test-artifacts/dashboard.png`.

use crate::helpers::browser::{Browser, required_chromium};
use crate::helpers::gateway::TestGateway;
use crate::helpers::{ACCOUNT_NUMBERS, INDIVIDUAL};
use serde_json::json;
use std::time::Duration;

/// How long the page may take to show a change.
const LIMIT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn dashboard_renders_the_accounts_and_updates_live() {
    let Some(binary) = required_chromium() else {
        return;
    };
    let gw = TestGateway::start(&[]).await;
    let mut browser = Browser::launch(&binary, "dashboard").await;
    let page = &mut browser.page;
    page.call("Page.enable", json!({})).await;
    page.call("Page.navigate", json!({"url": format!("{}/", gw.url)}))
        .await;

    // The snapshot renders both demo accounts.
    page.wait_for_text("section[data-account=\"individual\"] .cash", "40506.72")
        .await;
    page.wait_for_text("section[data-account=\"roth-ira\"] .cash", "18250.4")
        .await;
    page.wait_for_text("section[data-account=\"individual\"] .number", "***1842")
        .await;
    page.wait_for_text("section[data-account=\"individual\"] .badge", "live")
        .await;
    page.wait_for_text("#connection", "live").await;

    // An event injected upstream changes what the page shows.
    let mut balance = gw
        .sim_get(&format!("/sim/accounts/{INDIVIDUAL}/truth"))
        .await["balance"]
        .clone();
    balance["cash-balance"] = json!("77777.77");
    balance["net-liquidating-value"] = json!("199999.99");
    gw.inject(INDIVIDUAL, "AccountBalance", balance).await;
    page.wait_for_text("section[data-account=\"individual\"] .cash", "77777.77")
        .await;
    page.wait_for_text("section[data-account=\"individual\"] .net-liq", "199999.99")
        .await;
    // The chart drew the change; the event list names its source; the status line is live.
    page.wait_for(
        "document.querySelector('section[data-account=\"individual\"] .chart polyline').getAttribute('points').trim().split(' ').length >= 2",
        LIMIT,
    )
    .await;
    page.wait_for_text(
        "section[data-account=\"individual\"] .chart .high",
        "high 199999.99",
    )
    .await;
    page.wait_for_text(
        "section[data-account=\"individual\"] .events li:first-child b",
        "AccountBalance",
    )
    .await;
    page.wait_for_text(
        "section[data-account=\"individual\"] .events li:first-child .source",
        "stream",
    )
    .await;
    page.wait_for(
        "document.querySelector('section[data-account=\"individual\"] .upstream').textContent.startsWith('upstream live')",
        LIMIT,
    )
    .await;
    let order = json!({"id": 550_001, "status": "Live", "updated-at": 4_102_444_800_000_i64, "price": "12.34",
        "legs": [{"symbol": "TSLA", "instrument-type": "Equity", "action": "Buy to Open", "quantity": 7, "remaining-quantity": 7, "fills": []}]});
    gw.inject(INDIVIDUAL, "Order", order).await;
    page.wait_for_text(
        "section[data-account=\"individual\"] tr[data-order=\"550001\"] td:nth-child(2)",
        "TSLA",
    )
    .await;

    let html = page
        .call(
            "Runtime.evaluate",
            json!({"expression": "document.documentElement.outerHTML", "returnByValue": true}),
        )
        .await;
    let html = html["result"]["value"].as_str().unwrap().to_string();
    for number in ACCOUNT_NUMBERS {
        assert!(
            !html.contains(number),
            "the page shows a full account number"
        );
    }
    let shot = page
        .call("Page.captureScreenshot", json!({"format": "png"}))
        .await;
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("dashboard.png"), &png).unwrap();

    browser.close().await;
    gw.stop().await;
}

#[tokio::test]
async fn dashboard_asks_for_a_key_and_keeps_it_for_the_session() {
    let Some(binary) = required_chromium() else {
        return;
    };
    let mut browser = Browser::launch(&binary, "dashboard-key").await;
    let secret = "dashboard-test-secret-4711";
    let key = format!("dash:{secret}:*");
    let gw = TestGateway::start_as(&["--api-key", &key], Some(secret)).await;
    let page = &mut browser.page;
    page.call("Page.enable", json!({})).await;
    page.call("Page.navigate", json!({"url": format!("{}/", gw.url)}))
        .await;
    page.wait_for(
        "document.querySelector('#key-form').classList.contains('shown')",
        LIMIT,
    )
    .await;
    assert_eq!(
        page.eval("document.querySelectorAll('section.account').length")
            .await,
        json!(0),
        "nothing is shown before a key is given"
    );
    // A wrong key is refused and asked again; the right one opens the accounts.
    let submit = |key: &str| {
        format!(
            "document.querySelector('#key').value = {key:?}; document.querySelector('#key-form').requestSubmit(); true"
        )
    };
    page.eval(&submit("not-the-key")).await;
    page.wait_for_text("#key-error", "That key was refused.")
        .await;
    page.eval(&submit(secret)).await;
    page.wait_for_text("section[data-account=\"individual\"] .cash", "40506.72")
        .await;
    page.wait_for_text("#connection", "live").await;
    assert_eq!(
        page.eval("sessionStorage.getItem('ttgw.apiKey')").await,
        json!(secret)
    );
    // A reload finds the key in the tab's session storage and asks nothing.
    page.call("Page.reload", json!({})).await;
    page.wait_for_text("section[data-account=\"roth-ira\"] .cash", "18250.4")
        .await;
    assert_eq!(
        page.eval("document.querySelector('#key-form').classList.contains('shown')")
            .await,
        json!(false)
    );
    // A key given in the URL is taken, and leaves the address bar and the history.
    page.eval("sessionStorage.clear(); true").await;
    let with_key = format!("{}/?access_token={secret}", gw.url);
    page.call("Page.navigate", json!({"url": with_key})).await;
    page.wait_for_text("section[data-account=\"individual\"] .cash", "40506.72")
        .await;
    assert_eq!(page.eval("location.search").await, json!(""));
    assert_eq!(
        page.eval("sessionStorage.getItem('ttgw.apiKey')").await,
        json!(secret)
    );
    browser.close().await;
    gw.stop().await;
}
