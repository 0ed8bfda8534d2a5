//! The live dashboard at `/`: one static page, embedded in the binary, that follows every
//! account the caller may see through the TypeScript client (clients/typescript, built into
//! `dashboard/client.js` and served at `/client.js`, so neither needs Node or a CDN at run
//! time). It draws balances, positions, working orders, a net-liquidating-value chart, the
//! last events with their source, and each account's upstream status.

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

const PAGE: &str = include_str!("dashboard/index.html");
/// The client's browser bundle (`npm run build` in clients/typescript; a test there fails
/// when this copy is stale).
const CLIENT: &str = include_str!("dashboard/client.js");

/// The live dashboard (HTML). Asks for an API key when the gateway wants one.
#[utoipa::path(get, path = "/", operation_id = "getDashboard", tag = "health",
    responses((status = 200, description = "The live dashboard page", content_type = "text/html")))]
pub async fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    // Everything the page needs comes from this origin.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:"),
    );
    response
}

/// The TypeScript client as one ES module, for pages (the dashboard imports it).
#[utoipa::path(get, path = "/client.js", operation_id = "getClientBundle", tag = "health",
    responses((status = 200, description = "The TypeScript client (clients/typescript) as one ES module", content_type = "text/javascript")))]
pub async fn client() -> Response {
    let mut response = CLIENT.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
