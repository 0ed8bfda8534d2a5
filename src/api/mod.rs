//! The HTTP surface (axum): REST snapshots, SSE streams, health, the OpenAPI document and
//! the Swagger UI served from the binary. It reads accounts and never reaches upstream.

pub mod access;
pub mod accounts;
pub mod auth;
pub mod dashboard;
pub mod docs;
pub mod error;
pub mod expiry;
pub mod feed;
pub mod health;
pub mod host;
pub mod jwks;
pub mod jwt;
pub mod limits;
pub mod metrics;
pub mod parts;
pub mod sse;
pub mod state;
pub mod ws;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower::ServiceBuilder;
use tower_http::cors::{AllowCredentials, AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

pub use state::AppState;

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(accounts::list))
        .routes(routes!(accounts::snapshot))
        .routes(routes!(parts::balance))
        .routes(routes!(parts::positions))
        .routes(routes!(parts::orders))
        .routes(routes!(parts::complex_orders))
        .routes(routes!(parts::trading_status))
        .routes(routes!(sse::account_events))
        .routes(routes!(sse::all_events))
        .routes(routes!(ws::upgrade))
        .routes(routes!(health::livez))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(dashboard::page))
        .routes(routes!(dashboard::client))
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes_and_document().1
}

/// The routes, and the document that describes them.
fn routes_and_document() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, mut document) = api_router().split_for_parts();
    docs::complete(&mut document);
    (routes, document)
}

/// The span of one request: its method, matched route and request id, never the raw URI,
/// whose query may hold an `access_token` and whose path may hold whatever a caller typed
/// (a full account number, say).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(axum::extract::MatchedPath::as_str)
        .unwrap_or("(unmatched)");
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        version = ?request.version(),
        request_id,
        status = tracing::field::Empty
    )
}

/// The whole HTTP application: routes, request ids, request logging (method and route only)
/// and, when origins are listed, CORS.
pub fn router(state: AppState) -> Router {
    let (router, api) = routes_and_document();
    let docs = SwaggerUi::new("/docs")
        .url("/openapi.json", api)
        .config(Config::new(["/openapi.json"]).validator_url("none"));
    let cors = cors_layer(&state.cors_origins);
    router
        .merge(docs)
        .layer(cors)
        .layer(axum::middleware::from_fn(access::log))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            host::check,
        ))
        .layer(
            ServiceBuilder::new()
                .map_request(drop_unfit_request_id)
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        .with_state(state)
}

/// The longest `x-request-id` taken from a client.
const MAX_REQUEST_ID: usize = 128;

/// Removes a client's `x-request-id` that is longer than [`MAX_REQUEST_ID`] bytes, holds
/// anything but visible ASCII, or holds an account number: a fresh one is made instead, so
/// the header a caller chose never comes back (or into a log line) unbounded, with control
/// characters or with a number in it.
fn drop_unfit_request_id<B>(mut request: axum::http::Request<B>) -> axum::http::Request<B> {
    let fit = |value: &HeaderValue| {
        value.len() <= MAX_REQUEST_ID
            && value.as_bytes().iter().all(|b| (0x21..=0x7e).contains(b))
            && value
                .to_str()
                .is_ok_and(|text| crate::mask::diagnostic(text) == text)
    };
    if request
        .headers()
        .get_all("x-request-id")
        .iter()
        .any(|v| !fit(v))
        || request.headers().get_all("x-request-id").iter().count() > 1
    {
        request.headers_mut().remove("x-request-id");
    }
    request
}

/// `Access-Control-Allow-Credentials: true` for the listed origins only (tower-http would
/// send it to any origin, beside no `Access-Control-Allow-Origin`).
fn credentials_for(origins: &[HeaderValue]) -> AllowCredentials {
    let origins = origins.to_vec();
    AllowCredentials::predicate(move |origin, _| origins.contains(origin))
}

/// CORS for the listed origins only: preflights answered, credentials (the token cookie)
/// allowed for them, each echoed exactly, never `*`; any other origin gets no CORS headers
/// (so browsers refuse it).
fn cors_layer(origins: &[HeaderValue]) -> CorsLayer {
    if origins.is_empty() {
        return CorsLayer::new();
    }
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([Method::GET, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::IF_NONE_MATCH,
            header::CONTENT_TYPE,
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::ETAG, HeaderName::from_static("x-request-id")])
        .allow_credentials(credentials_for(origins))
        .max_age(std::time::Duration::from_secs(600))
}
