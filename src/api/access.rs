//! The access log and the HTTP metrics: one `info` line per request (method, route
//! template, status, latency, bytes, request id, API key name; never the query string,
//! which may hold an `access_token`, nor the raw path, which may hold whatever a caller
//! typed) and `ttgw_http_requests_total` / `ttgw_http_request_duration_seconds`. For a
//! stream, latency and bytes are those of its start (the headers).

use std::sync::{Arc, OnceLock};

use axum::body::HttpBody as _;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;

/// Where the `Caller` extractor writes the name of the key a request presented, for the
/// access log line written after the handler.
#[derive(Clone, Debug, Default)]
pub struct KeyName(Arc<OnceLock<String>>);

impl KeyName {
    pub fn set(&self, name: &str) {
        let _ = self.0.set(name.to_string());
    }
}

/// Logs and counts one request.
pub async fn log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "(unmatched)".to_string(), |p| p.as_str().to_string());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let key = KeyName::default();
    request.extensions_mut().insert(key.clone());
    let response = next.run(request).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let bytes = response.body().size_hint().exact();
    crate::metrics::http_request(&route, method.as_str(), status, latency.as_secs_f64());
    tracing::Span::current().record("status", status);
    tracing::info!(
        target: "tastytrade_gateway::access",
        method = %method,
        route = %route,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        bytes,
        request_id = %request_id,
        key = key.0.get().map_or("-", String::as_str),
        "request"
    );
    response
}
