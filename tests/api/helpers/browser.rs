//! Headless Chromium (Debian `chromium`, installed by `.ci/run`) driven over the Chrome
//! DevTools Protocol: launch it with a throw-away profile, talk to its page, evaluate
//! JavaScript and wait for what a page shows. Used by the browser tests (the dashboard, the
//! token cookie with EventSource). Without chromium a browser test skips, except under `CI`,
//! where it fails.

use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

/// The chromium binary, if the machine has one.
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

/// The chromium binary; `None` (the test then skips) only outside CI.
pub fn required_chromium() -> Option<String> {
    let found = chromium();
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium (see .ci/run)"
        );
        eprintln!(
            "SKIPPED: no chromium on this machine (apt-get install chromium); CI runs this test"
        );
    }
    found
}

/// A running headless Chromium and its one page.
pub struct Browser {
    child: tokio::process::Child,
    profile: std::path::PathBuf,
    pub page: Page,
}

impl Browser {
    /// Starts `binary` headless on about:blank and attaches to its page.
    pub async fn launch(binary: &str, name: &str) -> Self {
        let profile =
            std::env::temp_dir().join(format!("ttgw-chromium-{name}-{}", std::process::id()));
        let mut child = tokio::process::Command::new(binary)
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
        let page = Page::attach(&devtools).await;
        Self {
            child,
            profile,
            page,
        }
    }

    pub async fn close(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One DevTools page session.
pub struct Page {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    /// Attaches to the first page target of the browser whose DevTools socket is `devtools`.
    async fn attach(devtools: &str) -> Self {
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
        Self { socket, next_id: 0 }
    }

    /// Calls a DevTools method; fails the test on an error reply or none within 20 s.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
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
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    pub async fn text_of(&mut self, selector: &str) -> String {
        let expression =
            format!("(document.querySelector({selector:?}) || {{}}).textContent || ''");
        self.eval(&expression)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn wait_for_text(&mut self, selector: &str, wanted: &str) {
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

    /// Waits until the expression is `true` in the page, failing after `limit`.
    pub async fn wait_for(&mut self, expression: &str, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.eval(expression).await == Value::Bool(true) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "`{expression}` was not true within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
