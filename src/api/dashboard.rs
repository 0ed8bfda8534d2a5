//! The live dashboard at `/`: one static page (HTML + a little JS, embedded in the binary,
//! no build step, no CDN) that opens one EventSource on `/v1/events` and shows each
//! account's balance, positions, working orders, upstream status and last events.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = include_str!("dashboard.html");

/// The live dashboard (HTML). Pass `?access_token=<key>` when API keys are on.
#[utoipa::path(get, path = "/", operation_id = "getDashboard", tag = "health",
    responses((status = 200, description = "The live dashboard page", content_type = "text/html")))]
pub async fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    // Everything the page needs comes from this origin.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'"),
    );
    response
}
