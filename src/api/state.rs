//! What every handler shares: the account registry, the event log and the shutdown
//! signal that ends open streams.

use std::sync::Arc;

use std::time::Duration;

use tokio::sync::watch;

use crate::account::{Account, Registry};
use crate::log::EventLog;

use super::auth::ApiKeys;
use super::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// Every account's event log: snapshots and subscriptions come from here.
    pub log: Arc<dyn EventLog>,
    pub shutdown: watch::Receiver<bool>,
    /// Consumer keys; with no keys and no tokens the API is open (demo mode on loopback only).
    pub keys: Arc<ApiKeys>,
    /// Checks tokens (`--jwt-secret` / `--jwt-jwks`), when configured.
    pub jwt: Option<Arc<super::jwt::Verifier>>,
    /// How long a stream may stay silent before a keep-alive.
    pub keep_alive: Duration,
    /// How old a subscriber's oldest undelivered event may get before it is cut.
    pub max_lag: Duration,
    /// Over more accounts than this, `/v1/events` writes ids in the whole log's order
    /// (`--compact-ids-above`).
    pub compact_ids_above: usize,
    /// Origins allowed to call from browsers (CORS, and the WebSocket `Origin` check).
    pub cors_origins: Arc<Vec<axum::http::HeaderValue>>,
    /// Renders `/metrics`; `None` when no recorder could be installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// Streams per client.
    pub streams: Arc<super::limits::StreamLimits>,
    /// Whether `/metrics` needs an API key like every other route (`--metrics-require-key`).
    pub metrics_need_key: bool,
    /// Which accounts `/readyz` needs live.
    pub ready_requires: super::health::ReadyRequires,
}

impl AppState {
    /// Whether callers must present a credential: API keys or tokens are configured.
    pub fn auth_required(&self) -> bool {
        !self.keys.is_empty() || self.jwt.is_some()
    }

    pub fn account(&self, public_id: &str) -> Result<Arc<Account>, ApiError> {
        self.registry
            .get(public_id)
            .cloned()
            .ok_or(ApiError::UnknownAccount)
    }
}
