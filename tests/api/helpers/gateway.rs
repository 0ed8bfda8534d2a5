//! Starting the real gateway (demo mode: embedded simulator) on 127.0.0.1:0, reading its
//! SSE streams as a browser would, and scanning everything received for leaks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::Value;
use tastytrade_gateway::config::{Config, ServeArgs};
use tastytrade_gateway::startup::{self, Gateway};
use tokio::sync::mpsc;

use super::process::Turn;
use super::{ACCOUNT_NUMBERS, INDIVIDUAL, ROTH, SECRET_MARKERS, wait_until};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// The configuration `TestGateway::start` uses: demo mode on 127.0.0.1:0, the market script
/// paused unless `--sim-rate` is among `extra`, then `extra`.
pub fn config(extra: &[&str]) -> Config {
    let mut args = vec!["tastytrade-gateway", "--listen", "127.0.0.1:0"];
    if !extra.contains(&"--sim-rate") {
        args.extend_from_slice(&["--sim-rate", "0"]);
    }
    args.extend_from_slice(extra);
    let cli = Cli::try_parse_from(args).expect("flags parse");
    Config::from_args(cli.serve).expect("config is valid")
}

/// A running gateway plus what the tests need to talk to it and to its simulator.
pub struct TestGateway {
    pub gateway: Gateway,
    pub http: reqwest::Client,
    pub url: String,
    pub sim_url: String,
    /// Every byte received from the gateway, for the leak scan.
    pub received: Arc<Mutex<Vec<u8>>>,
    /// The API key the helpers present (`Authorization: Bearer`), when the gateway has keys.
    pub key: Option<String>,
    /// This gateway's turn on the test process (dropped last, after the gateway).
    _turn: Turn,
}

impl TestGateway {
    /// Starts the gateway in demo mode with the market script paused; `extra` are more flags.
    pub async fn start(extra: &[&str]) -> Self {
        Self::start_as(extra, None).await
    }

    /// Like [`TestGateway::start`], for a gateway with `--api-key`s: the helpers (`get`,
    /// `sse`, the readiness wait) present `key`.
    pub async fn start_as(extra: &[&str], key: Option<&str>) -> Self {
        Self::start_in(Turn::shared().await, extra, key).await
    }

    /// Like [`TestGateway::start`], with the test process to itself for as long as this
    /// gateway lives: no other in-process gateway or simulator runs meanwhile (for tests
    /// that measure the process's memory). Waits for the others to end.
    pub async fn start_alone(extra: &[&str]) -> Self {
        Self::start_in(Turn::exclusive().await, extra, None).await
    }

    async fn start_in(turn: Turn, extra: &[&str], key: Option<&str>) -> Self {
        let gateway = startup::start(config(extra)).await.expect("gateway starts");
        let url = gateway.url();
        let sim_url = gateway
            .sim
            .as_ref()
            .expect("demo mode has a simulator")
            .api_url();
        let this = Self {
            gateway,
            http: reqwest::Client::new(),
            url,
            sim_url,
            received: Arc::default(),
            key: key.map(str::to_string),
            _turn: turn,
        };
        this.wait_live().await;
        this
    }

    /// GETs a gateway path; returns status and JSON body (recorded for the leak scan).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path}", self.url));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.expect("gateway answers");
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let bytes = response.bytes().await.expect("body");
        self.record(headers.as_bytes());
        self.record(&bytes);
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub fn record(&self, bytes: &[u8]) {
        self.received.lock().unwrap().extend_from_slice(bytes);
    }

    /// Waits until every account's upstream is live.
    pub async fn wait_live(&self) {
        wait_until("every account live", Duration::from_secs(15), || async {
            let (_, body) = self.get("/v1/accounts").await;
            let accounts = body["accounts"].as_array().cloned().unwrap_or_default();
            !accounts.is_empty() && accounts.iter().all(|a| a["upstream"]["state"] == "live")
        })
        .await;
    }

    /// POSTs JSON to the simulator's control API.
    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.sim_url))
            .json(&body)
            .send()
            .await
            .expect("simulator answers");
        assert!(
            response.status().is_success(),
            "simulator {path}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.sim_url))
            .send()
            .await
            .expect("simulator answers")
            .json()
            .await
            .expect("JSON")
    }

    pub async fn sim_delete(&self, path: &str) {
        let status = self
            .http
            .delete(format!("{}{path}", self.sim_url))
            .send()
            .await
            .expect("simulator answers")
            .status();
        assert!(status.is_success(), "simulator DELETE {path}: {status}");
    }

    /// Injects one event for an account through the simulator (it updates the truth too).
    pub async fn inject(&self, number: &str, kind: &str, data: Value) {
        self.sim_post(
            &format!("/sim/accounts/{number}/events"),
            serde_json::json!({"type": kind, "data": data}),
        )
        .await;
    }

    /// Sends a raw text frame to the streamer sockets subscribed to `number` (the simulator's
    /// truth is not touched).
    pub async fn inject_raw(&self, number: &str, raw: &str) {
        self.sim_post(
            &format!("/sim/accounts/{number}/events"),
            serde_json::json!({ "raw": raw }),
        )
        .await;
    }

    /// One counter of the simulator's `GET /sim/stats`.
    pub async fn sim_stat(&self, name: &str) -> u64 {
        let stats = self.sim_get("/sim/stats").await;
        stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("stat {name} missing in {stats}"))
    }

    /// `GET /v1/accounts/{public_id}/snapshot`, which must answer 200.
    pub async fn snapshot(&self, public_id: &str) -> Value {
        let (status, body) = self
            .get(&format!("/v1/accounts/{public_id}/snapshot"))
            .await;
        assert_eq!(status, 200, "snapshot of {public_id}: {body}");
        body
    }

    /// Opens the account's SSE stream and reads its first event, the snapshot.
    pub async fn subscribed(&self, public_id: &str) -> (SseClient, SseEvent) {
        let mut sse = self
            .sse(&format!("/v1/accounts/{public_id}/events"), None)
            .await;
        assert_eq!(sse.status, 200);
        let first = sse.next(Duration::from_secs(5)).await;
        assert_eq!(first.event, "snapshot");
        (sse, first)
    }

    /// The upstream status of one account, from `GET /v1/accounts`.
    pub async fn upstream(&self, public_id: &str) -> Value {
        let (_, body) = self.get("/v1/accounts").await;
        body["accounts"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["id"] == public_id)
            .map(|a| a["upstream"].clone())
            .unwrap_or_default()
    }

    /// Waits until the gateway's snapshot of `public_id` equals the simulator's truth of
    /// `number` (masked), field by field; returns the snapshot.
    pub async fn converge(&self, public_id: &str, number: &str, limit: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let truth = masked(&self.sim_get(&format!("/sim/accounts/{number}/truth")).await);
            let (_, snapshot) = self
                .get(&format!("/v1/accounts/{public_id}/snapshot"))
                .await;
            match same_state(&snapshot, &truth) {
                Ok(()) => return snapshot,
                Err(difference) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{public_id} did not equal the simulator's truth within {limit:?}: {difference}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Opens an SSE stream on a gateway path.
    pub async fn sse(&self, path: &str, last_event_id: Option<&str>) -> SseClient {
        let bearer = self.key.as_ref().map(|k| format!("Bearer {k}"));
        let mut headers = Vec::new();
        if let Some(id) = last_event_id {
            headers.push(("last-event-id", id));
        }
        if let Some(bearer) = &bearer {
            headers.push(("authorization", bearer.as_str()));
        }
        SseClient::connect_with(
            &self.http,
            &format!("{}{path}", self.url),
            &headers,
            self.received.clone(),
        )
        .await
    }

    /// Fails the test if a full account number or a token reached anything received.
    pub fn assert_no_leaks(&self) {
        assert_no_leaks(&self.received.lock().unwrap());
    }

    pub async fn stop(self) {
        self.gateway.shutdown().await;
    }
}

/// Fails if `bytes` hold a full account number or a secret marker.
pub fn assert_no_leaks(bytes: &[u8]) {
    assert!(!bytes.is_empty(), "the leak scan needs something to scan");
    let text = String::from_utf8_lossy(bytes);
    for needle in ACCOUNT_NUMBERS.iter().chain(SECRET_MARKERS.iter()) {
        assert!(
            !text.contains(needle),
            "leak: `{needle}` appears in what the gateway sent"
        );
    }
}

/// One parsed SSE event.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub id: String,
    pub event: String,
    pub data: Value,
}

/// An SSE subscriber reading in the background, as EventSource would.
pub struct SseClient {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    events: mpsc::UnboundedReceiver<SseEvent>,
    pub retry: Arc<Mutex<Option<Duration>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SseClient {
    pub async fn connect(
        http: &reqwest::Client,
        url: &str,
        last_event_id: Option<&str>,
        received: Arc<Mutex<Vec<u8>>>,
    ) -> Self {
        let headers: Vec<(&str, &str)> = last_event_id
            .map(|id| ("last-event-id", id))
            .into_iter()
            .collect();
        Self::connect_with(http, url, &headers, received).await
    }

    /// Opens `url` with extra request headers (`last-event-id`, `authorization`, ...).
    pub async fn connect_with(
        http: &reqwest::Client,
        url: &str,
        headers: &[(&str, &str)],
        received: Arc<Mutex<Vec<u8>>>,
    ) -> Self {
        let mut request = http.get(url).header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("SSE request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        received
            .lock()
            .unwrap()
            .extend_from_slice(format!("{headers:?}").as_bytes());
        let (tx, events) = mpsc::unbounded_channel();
        let retry = Arc::new(Mutex::new(None));
        let retry_seen = retry.clone();
        let task = tokio::spawn(async move {
            let bytes = response.bytes_stream().inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    received.lock().unwrap().extend_from_slice(chunk);
                }
            });
            let mut stream = bytes.eventsource();
            while let Some(Ok(event)) = stream.next().await {
                if let Some(retry) = event.retry {
                    *retry_seen.lock().unwrap() = Some(retry);
                }
                if event.data.is_empty() {
                    continue;
                }
                let data =
                    serde_json::from_str(&event.data).unwrap_or(Value::String(event.data.clone()));
                if tx
                    .send(SseEvent {
                        id: event.id,
                        event: event.event,
                        data,
                    })
                    .is_err()
                {
                    break;
                }
            }
        });
        Self {
            status,
            headers,
            events,
            retry,
            task,
        }
    }

    /// The next event, or a test failure after `limit`.
    pub async fn next(&mut self, limit: Duration) -> SseEvent {
        match tokio::time::timeout(limit, self.events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the SSE stream ended"),
            Err(_) => panic!("no SSE event within {limit:?}"),
        }
    }

    /// The next event, or `None` when none came within `limit` or the stream ended.
    pub async fn try_next(&mut self, limit: Duration) -> Option<SseEvent> {
        tokio::time::timeout(limit, self.events.recv())
            .await
            .ok()
            .flatten()
    }

    /// The next event of type `kind`, skipping others, or a test failure after `limit`.
    pub async fn next_of(&mut self, kind: &str, limit: Duration) -> SseEvent {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await;
            if event.event == kind {
                return event;
            }
        }
    }

    /// The next event that is not an upstream `status` change, or a test failure after `limit`.
    pub async fn next_change(&mut self, limit: Duration) -> SseEvent {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await;
            if event.event != "status" {
                return event;
            }
        }
    }

    /// Every event that arrives within `quiet` of the previous one.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout(quiet, self.events.recv()).await {
            out.push(event);
        }
        out
    }
}

impl Drop for SseClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The simulator's truth as the gateway must show it: every account number masked.
pub fn masked(truth: &Value) -> Value {
    let text = truth
        .to_string()
        .replace(INDIVIDUAL, "***1842")
        .replace(ROTH, "***9822");
    serde_json::from_str(&text).unwrap()
}

pub fn by_key(items: &Value, key: impl Fn(&Value) -> String) -> BTreeMap<String, Value> {
    items
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|v| (key(&v), v))
        .collect()
}

pub fn id_of(v: &Value) -> String {
    match &v["id"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn position_of(v: &Value) -> String {
    format!(
        "{}|{}",
        v["symbol"].as_str().unwrap_or_default(),
        v["instrument-type"].as_str().unwrap_or_default()
    )
}

/// A gateway snapshot in the simulator's truth shape, to compare two snapshots with `same_state`.
pub fn as_truth(snapshot: &Value) -> Value {
    serde_json::json!({
        "balance": snapshot["balance"],
        "positions": snapshot["positions"],
        "orders": snapshot["orders"],
        "complex-orders": snapshot["complex_orders"],
        "trading-status": snapshot["trading_status"],
    })
}

/// Two gateway snapshots hold the same state (order of lists aside).
pub fn same_snapshots(a: &Value, b: &Value) -> Result<(), String> {
    same_state(a, &as_truth(b))
}

/// Compares a gateway snapshot with the simulator's (masked) truth, field by field.
pub fn same_state(snapshot: &Value, truth: &Value) -> Result<(), String> {
    let checks = [
        (
            "balance",
            snapshot["balance"].clone(),
            truth["balance"].clone(),
        ),
        (
            "trading_status",
            snapshot["trading_status"].clone(),
            truth["trading-status"].clone(),
        ),
    ];
    for (name, ours, theirs) in checks {
        if ours != theirs {
            return Err(format!(
                "{name} differs:\n gateway {ours}\n truth   {theirs}"
            ));
        }
    }
    let lists = [
        (
            "positions",
            by_key(&snapshot["positions"], position_of),
            by_key(&truth["positions"], position_of),
        ),
        (
            "orders",
            by_key(&snapshot["orders"], id_of),
            by_key(&truth["orders"], id_of),
        ),
        (
            "complex_orders",
            by_key(&snapshot["complex_orders"], id_of),
            by_key(&truth["complex-orders"], id_of),
        ),
    ];
    for (name, ours, theirs) in lists {
        if ours != theirs {
            let keys: Vec<_> = ours
                .keys()
                .chain(theirs.keys())
                .filter(|k| ours.get(*k) != theirs.get(*k))
                .collect();
            return Err(format!("{name} differ at {keys:?}"));
        }
    }
    Ok(())
}

/// Applies one envelope to a client-side copy of the snapshot, as a consumer would.
pub fn apply(state: &mut Value, envelope: &Value) {
    let data = envelope["data"].clone();
    let upsert = |list: &mut Value, key: &dyn Fn(&Value) -> String, remove: bool| {
        let items = list.as_array_mut().unwrap();
        items.retain(|item| key(item) != key(&data));
        if !remove {
            items.push(data.clone());
        }
    };
    match envelope["type"].as_str().unwrap() {
        "AccountBalance" => state["balance"] = data.clone(),
        "TradingStatus" => state["trading_status"] = data.clone(),
        "Order" => upsert(&mut state["orders"], &id_of, false),
        "ComplexOrder" => upsert(&mut state["complex_orders"], &id_of, false),
        "OrderRemoved" => upsert(&mut state["orders"], &id_of, true),
        "ComplexOrderRemoved" => upsert(&mut state["complex_orders"], &id_of, true),
        "CurrentPosition" => {
            let zero = data["quantity-direction"] == "Zero";
            upsert(&mut state["positions"], &position_of, zero)
        }
        _ => {}
    }
}
