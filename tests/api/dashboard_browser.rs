//! The dashboard in a real browser: headless Chromium (Debian `chromium`, installed by
//! `.ci/run`) loads `/`, renders the demo accounts from the snapshot, and shows a new value
//! after an event is injected through the simulator's `/sim/`. Driven over the Chrome
//! DevTools Protocol; a screenshot is saved to `target/test-artifacts/dashboard.png`.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::gateway::TestGateway;
use crate::helpers::{ACCOUNT_NUMBERS, INDIVIDUAL};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

fn chromium() -> Option<String> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find_map(|name| {
            let found = std::process::Command::new("which")
                .arg(name)
                .output()
                .ok()?;
            found
                .status
                .success()
                .then(|| String::from_utf8_lossy(&found.stdout).trim().to_string())
        })
}

/// One DevTools page session.
struct Page {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.socket
            .send(Message::text(
                json!({"id": id, "method": method, "params": params}).to_string(),
            ))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let message = self
                    .socket
                    .next()
                    .await
                    .expect("DevTools socket open")
                    .expect("DevTools frame");
                if let Message::Text(text) = message {
                    let value: Value = serde_json::from_str(text.as_str()).unwrap();
                    if value["id"] == id {
                        return value;
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("DevTools did not answer {method}"));
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    /// The value of a JavaScript expression in the page.
    async fn evaluate(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Waits (15 s at most) until `expression` is `true` in the page.
    async fn wait_until(&mut self, expression: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.evaluate(expression).await != json!(true) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "never true in the page: {expression}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text_of(&mut self, selector: &str) -> String {
        let expression =
            format!("(document.querySelector({selector:?}) || {{}}).textContent || ''");
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn wait_for_text(&mut self, selector: &str, wanted: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let shown = self.text_of(selector).await;
            if shown == wanted {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{selector}` shows {shown:?}, not {wanted:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A headless Chromium and its first page; `None` (after saying why) when this machine has
/// no Chromium and this is not CI.
struct Browser {
    child: tokio::process::Child,
    page: Page,
    profile: std::path::PathBuf,
}

impl Browser {
    async fn launch(name: &str) -> Option<Self> {
        let Some(browser) = chromium() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install chromium (see .ci/run)"
            );
            eprintln!(
                "SKIPPED: no chromium on this machine (apt-get install chromium); CI runs this test"
            );
            return None;
        };
        let profile =
            std::env::temp_dir().join(format!("ttgw-chromium-{name}-{}", std::process::id()));
        let mut child = tokio::process::Command::new(browser)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--remote-debugging-port=0",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromium starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let devtools = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.trim().to_string();
                }
            }
            panic!("chromium exited before opening DevTools");
        })
        .await
        .expect("chromium opens DevTools within 30 s");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http_base = devtools
            .replace("ws://", "http://")
            .split("/devtools")
            .next()
            .unwrap()
            .to_string();
        let targets: Value = reqwest::get(format!("{http_base}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page_url = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target")["webSocketDebuggerUrl"]
            .as_str()
            .unwrap()
            .to_string();
        let (socket, _) = tokio_tungstenite::connect_async(page_url).await.unwrap();
        let mut page = Page { socket, next_id: 0 };
        page.call("Page.enable", json!({})).await;
        Some(Self {
            child,
            page,
            profile,
        })
    }

    async fn close(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test]
async fn dashboard_renders_the_accounts_and_updates_live() {
    let Some(mut browser) = Browser::launch("dashboard").await else {
        return;
    };
    let gw = TestGateway::start(&[]).await;
    let page = &mut browser.page;
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
    page.wait_until(
        "document.querySelector('section[data-account=\"individual\"] .chart polyline').getAttribute('points').trim().split(' ').length >= 2",
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
    page.wait_until(
        "document.querySelector('section[data-account=\"individual\"] .upstream').textContent.startsWith('upstream live')",
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
    let Some(mut browser) = Browser::launch("dashboard-key").await else {
        return;
    };
    let secret = "dashboard-test-secret-4711";
    let key = format!("dash:{secret}:*");
    let gw = TestGateway::start_as(&["--api-key", &key], Some(secret)).await;
    let page = &mut browser.page;
    page.call("Page.navigate", json!({"url": format!("{}/", gw.url)}))
        .await;
    page.wait_until("document.querySelector('#key-form').classList.contains('shown')")
        .await;
    assert_eq!(
        page.evaluate("document.querySelectorAll('section.account').length")
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
    page.evaluate(&submit("not-the-key")).await;
    page.wait_for_text("#key-error", "That key was refused.")
        .await;
    page.evaluate(&submit(secret)).await;
    page.wait_for_text("section[data-account=\"individual\"] .cash", "40506.72")
        .await;
    page.wait_for_text("#connection", "live").await;
    assert_eq!(
        page.evaluate("sessionStorage.getItem('ttgw.apiKey')").await,
        json!(secret)
    );
    // A reload finds the key in the tab's session storage and asks nothing.
    page.call("Page.reload", json!({})).await;
    page.wait_for_text("section[data-account=\"roth-ira\"] .cash", "18250.4")
        .await;
    assert_eq!(
        page.evaluate("document.querySelector('#key-form').classList.contains('shown')")
            .await,
        json!(false)
    );
    // A key given in the URL is taken, and leaves the address bar and the history.
    page.evaluate("sessionStorage.clear(); true").await;
    let with_key = format!("{}/?access_token={secret}", gw.url);
    page.call("Page.navigate", json!({"url": with_key})).await;
    page.wait_for_text("section[data-account=\"individual\"] .cash", "40506.72")
        .await;
    assert_eq!(page.evaluate("location.search").await, json!(""));
    assert_eq!(
        page.evaluate("sessionStorage.getItem('ttgw.apiKey')").await,
        json!(secret)
    );
    browser.close().await;
    gw.stop().await;
}
