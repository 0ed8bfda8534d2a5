//! `GET /metrics`: the Prometheus text exposition of what `crate::metrics` records.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::auth::Caller;
use super::error::ApiError;
use super::state::AppState;

/// Prometheus metrics (text format 0.0.4).
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition: subscribers, events published and delivered, slow-consumer cuts, stream starts (snapshot/replay/reset), upstream reconnects, resync differences, skipped upstream input, upstream state per account, end-to-end lag, refused connections and streams, upstream attempts", content_type = "text/plain"),
        (status = 401, description = "No valid API key (only with --metrics-require-key)", body = super::error::ErrorBody)),
    security((), ("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn metrics(State(app): State<AppState>, caller: Result<Caller, ApiError>) -> Response {
    match caller {
        Err(refused) if app.metrics_need_key => refused.into_response(),
        _ => render(&app),
    }
}

/// The exposition itself (also served by the separate metrics listener, `--metrics-listen`).
pub fn render(app: &AppState) -> Response {
    let body = match &app.metrics {
        Some(handle) => {
            crate::metrics::process_collector().collect();
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    };
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
