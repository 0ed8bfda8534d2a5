//! The simulator on its own, as the simulator tests drive it: started on 127.0.0.1:0 with
//! HTTP clients (with and without a `User-Agent`), logins, the control API, streamer
//! sockets, and the shapes its frames must have.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tastytrade_sim::{self as sim, SimHandle};
// The simulator's library types, from here only (one place to change if they move).
pub use tastytrade_sim::{SimConfig, SimCredentials};

use super::process::Turn;
use super::ws::{self, Ws, next_json, send_json};
use super::{FRAME_TIMEOUT, USER_AGENT};

/// A configuration with the market script paused (the default for these tests).
pub fn paused_config() -> SimConfig {
    SimConfig {
        paused: true,
        ..SimConfig::default()
    }
}

/// A running simulator plus HTTP clients (with and without a `User-Agent`).
pub struct TestSim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
    pub http_no_agent: reqwest::Client,
    /// This simulator's turn on the test process (dropped last).
    _turn: Turn,
}

impl TestSim {
    pub async fn start(config: SimConfig) -> Self {
        let turn = Turn::shared().await;
        let handle = sim::start(config).await.expect("the simulator starts");
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        let http_no_agent = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("http client");
        Self {
            handle,
            http,
            http_no_agent,
            _turn: turn,
        }
    }

    pub async fn paused() -> Self {
        Self::start(paused_config()).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.handle.api_url(), path)
    }

    /// `POST /oauth/token` with the demo refresh token; returns the raw access token.
    pub async fn access_token(&self) -> String {
        let creds = SimCredentials::default();
        let response = self
            .http
            .post(self.url("/oauth/token"))
            .json(&json!({
                "grant_type": "refresh_token",
                "refresh_token": creds.refresh_token,
                "client_secret": creds.client_secret,
            }))
            .send()
            .await
            .expect("POST /oauth/token");
        assert_eq!(response.status(), StatusCode::OK, "POST /oauth/token");
        let body: Value = response.json().await.expect("token JSON");
        body["access_token"]
            .as_str()
            .expect("access_token is a string")
            .to_string()
    }

    /// `Bearer <access token>`: what OAuth clients send in `Authorization` and `auth-token`.
    pub async fn bearer(&self) -> String {
        format!("Bearer {}", self.access_token().await)
    }

    /// `POST /sessions` with the demo login; returns the raw session token.
    pub async fn session_token(&self) -> String {
        let creds = SimCredentials::default();
        let response = self
            .http
            .post(self.url("/sessions"))
            .json(&json!({"login": creds.login, "password": creds.password, "remember-me": true}))
            .send()
            .await
            .expect("POST /sessions");
        assert_eq!(response.status(), StatusCode::CREATED, "POST /sessions");
        let body: Value = response.json().await.expect("session JSON");
        body["data"]["session-token"]
            .as_str()
            .expect("session-token is a string")
            .to_string()
    }

    /// GET with an `Authorization` header; returns the status and the JSON body.
    pub async fn get(&self, path: &str, auth: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .header("Authorization", auth)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path} body is not JSON ({e}): {text}"));
        (status, body)
    }

    /// GET that must answer 200; returns the JSON body.
    pub async fn get_ok(&self, path: &str, auth: &str) -> Value {
        let (status, body) = self.get(path, auth).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        body
    }

    /// POST a JSON body to the control API; returns the status and the JSON reply.
    pub async fn control(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status();
        let reply = response.json().await.expect("control reply is JSON");
        (status, reply)
    }

    /// Injects account events through the control API; the call must be accepted.
    pub async fn inject(&self, account: &str, body: Value) -> Value {
        let (status, reply) = self
            .control(&format!("/sim/accounts/{account}/events"), body)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "inject: {reply}");
        reply
    }

    /// `DELETE /sim/faults`.
    pub async fn clear_faults(&self) {
        let response = self
            .http
            .delete(self.url("/sim/faults"))
            .send()
            .await
            .expect("DELETE /sim/faults");
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body, json!({"cleared": true}));
    }

    /// `GET /sim/stats`.
    pub async fn stats(&self) -> Value {
        let response = self
            .http
            .get(self.url("/sim/stats"))
            .send()
            .await
            .expect("GET /sim/stats");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("stats JSON")
    }

    /// One counter of `GET /sim/stats`.
    pub async fn stat(&self, name: &str) -> u64 {
        let stats = self.stats().await;
        stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("stat {name} missing in {stats}"))
    }

    /// `GET /sim/accounts/{n}/truth`.
    pub async fn truth(&self, account: &str) -> Value {
        let response = self
            .http
            .get(self.url(&format!("/sim/accounts/{account}/truth")))
            .send()
            .await
            .expect("GET truth");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("truth JSON")
    }

    /// Opens a streamer socket that accepts messages up to 16 MiB.
    pub async fn ws(&self) -> Ws {
        ws::connect(&self.handle.streamer_url(), None).await
    }

    /// Opens a socket, sends `connect` for `accounts` and checks the ok ack; returns the
    /// socket and its `web-socket-session-id`.
    pub async fn connected_ws(&self, auth: &str, accounts: &[&str]) -> (Ws, String) {
        let mut ws = self.ws().await;
        send_json(
            &mut ws,
            json!({"action": "connect", "value": accounts, "auth-token": auth, "request-id": 1}),
        )
        .await;
        let ack = next_json(&mut ws, FRAME_TIMEOUT).await;
        let sid = session_id(&ack);
        assert_eq!(
            ack,
            json!({"status": "ok", "action": "connect", "web-socket-session-id": sid, "value": accounts, "request-id": 1})
        );
        (ws, sid)
    }

    pub async fn shutdown(self) {
        drop(self.http);
        drop(self.http_no_agent);
        self.handle.shutdown().await;
    }
}

/// The `web-socket-session-id` of an ack or error; asserts it is 8 lowercase hex chars.
pub fn session_id(frame: &Value) -> String {
    let sid = frame["web-socket-session-id"]
        .as_str()
        .unwrap_or_else(|| panic!("no web-socket-session-id in {frame}"))
        .to_string();
    assert_eq!(sid.len(), 8, "session id {sid:?} is 8 chars");
    assert!(
        sid.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "session id {sid:?} is lowercase hex"
    );
    sid
}

/// Asserts that a notification frame is exactly `{"type","data","timestamp"}` with an
/// integer timestamp within `[from_ms, to_ms]`.
pub fn assert_notification(frame: &Value, kind: &str, data: &Value, from_ms: i64, to_ms: i64) {
    let object = frame
        .as_object()
        .unwrap_or_else(|| panic!("notification is an object: {frame}"));
    assert_eq!(object.len(), 3, "only type, data, timestamp: {frame}");
    assert_eq!(frame["type"], json!(kind));
    assert_eq!(&frame["data"], data);
    let ts = frame["timestamp"]
        .as_i64()
        .unwrap_or_else(|| panic!("timestamp is an integer: {frame}"));
    assert!(
        (from_ms..=to_ms).contains(&ts),
        "timestamp {ts} within [{from_ms}, {to_ms}]"
    );
}

/// An `Order` for `account` that is not in the demo data.
pub fn sample_order(account: &str, id: u64, status: &str) -> Value {
    json!({
        "id": id,
        "account-number": account,
        "time-in-force": "Day",
        "order-type": "Limit",
        "size": 3,
        "underlying-symbol": "MSFT",
        "underlying-instrument-type": "Equity",
        "price": "410.5",
        "price-effect": "Debit",
        "status": status,
        "cancellable": true,
        "editable": true,
        "edited": false,
        "received-at": "2026-10-02T14:00:00.000+00:00",
        "updated-at": 1_791_036_000_000_i64,
        "user-id": "99",
        "username": "demotrader",
        "legs": [{
            "instrument-type": "Equity",
            "symbol": "MSFT",
            "action": "Buy to Open",
            "quantity": 3,
            "remaining-quantity": 3,
            "fills": [],
        }],
    })
}
