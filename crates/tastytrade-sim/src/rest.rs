//! The simulator's tastytrade REST API: OAuth and session login, the customer and its
//! accounts, and the per-account baseline (balances, positions, today's orders, complex
//! orders, trading status) in tastytrade's envelopes. A gate in front of every call plays
//! tastytrade's rules (a `User-Agent` is required) and the armed REST faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::demo_data;
use super::state::{Sim, SimAccount, SimStats, TokenCheck, TokenKind};
use super::wire::{SimError, data_envelope, id_text, items_envelope, rest_error};

type Result<T> = std::result::Result<T, SimError>;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/oauth/token", post(oauth_token))
        .route("/sessions", post(create_session).delete(delete_session))
        .route("/sessions/validate", post(validate_session))
        .route("/customers/me", get(customer))
        .route("/customers/me/accounts", get(customer_accounts))
        .route("/accounts/{number}/balances", get(balances))
        .route("/accounts/{number}/balances/{currency}", get(balances))
        .route("/accounts/{number}/positions", get(positions))
        .route("/accounts/{number}/orders/live", get(live_orders))
        .route("/accounts/{number}/orders/{id}", get(one_order))
        .route(
            "/accounts/{number}/complex-orders/live",
            get(complex_orders),
        )
        .route("/accounts/{number}/trading-status", get(trading_status))
        .layer(middleware::from_fn_with_state(sim.clone(), gate))
        .with_state(sim)
}

/// Runs before every REST call: counts it, applies latency, answers armed errors, and
/// refuses calls without a `User-Agent` as tastytrade does.
async fn gate(State(sim): State<Arc<Sim>>, request: Request, next: Next) -> Response {
    SimStats::bump(&sim.stats.rest_calls);
    if request.uri().path().starts_with("/accounts/") {
        sim.record_attempt("rest");
    }
    if sim.in_outage(request.uri().path()) {
        return rest_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "simulated_outage",
            "Service unavailable",
        );
    }
    if let Some(wait) = over_rate_limit(&sim, request.uri().path()) {
        SimStats::bump(&sim.stats.rest_rate_limited);
        let mut response = rest_error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests, slow down",
        );
        let retry_after = crate::rate_limit::retry_after_secs(wait);
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }
    let (latency, injected) = {
        let mut state = sim.lock();
        let faults = &mut state.rest_faults;
        let injected = if faults.errors_remaining > 0 {
            faults.errors_remaining -= 1;
            Some((faults.error_status, faults.retry_after_secs))
        } else {
            None
        };
        (faults.latency_ms, injected)
    };
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    if let Some((status, retry_after)) = injected {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = rest_error(status, "simulated_fault", "Simulated failure, try again");
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        return response;
    }
    let has_agent = request
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !v.trim().is_empty());
    if !has_agent {
        return rest_error(
            StatusCode::UNAUTHORIZED,
            "missing_user_agent",
            "A User-Agent header is required",
        );
    }
    next.run(request).await
}

/// How long an account call must wait under the rate limit, if it must.
fn over_rate_limit(sim: &Sim, path: &str) -> Option<Duration> {
    let limit = sim.rest_limit.as_ref()?;
    if !path.starts_with("/accounts/") {
        return None;
    }
    limit.take().err()
}

fn unauthorized() -> SimError {
    SimError::new(
        StatusCode::UNAUTHORIZED,
        "token_invalid",
        "This token is invalid or has expired",
    )
}

/// Checks the `Authorization` header: `Bearer <access token>` or a raw session token.
fn authorize(sim: &Sim, headers: &HeaderMap) -> Result<()> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    match sim.check_token(presented) {
        TokenCheck::Valid => Ok(()),
        TokenCheck::Expired | TokenCheck::Invalid => Err(unauthorized()),
    }
}

/// Authorizes and checks that `number` is one of the customer's accounts.
fn account_access(sim: &Sim, headers: &HeaderMap, number: &str) -> Result<()> {
    authorize(sim, headers)?;
    if sim.lock().account(number).is_none() {
        return Err(SimError::new(
            StatusCode::NOT_FOUND,
            "record_not_found",
            "Account not found",
        ));
    }
    Ok(())
}

/// Authorizes, checks the account, and reads what `pick` wants of it.
fn read_account<T>(
    sim: &Sim,
    headers: &HeaderMap,
    number: &str,
    pick: impl FnOnce(&SimAccount) -> T,
) -> Result<T> {
    account_access(sim, headers, number)?;
    sim.lock().account(number).map(pick).ok_or_else(|| {
        SimError::new(
            StatusCode::NOT_FOUND,
            "record_not_found",
            "Account not found",
        )
    })
}

/// Reads a JSON or form-encoded body into string fields.
fn body_fields(body: &Bytes) -> HashMap<String, String> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        return map
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k, s)),
                Value::Bool(b) => Some((k, b.to_string())),
                _ => None,
            })
            .collect();
    }
    form_urlencoded::parse(body).into_owned().collect()
}

async fn oauth_token(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let fields = body_fields(&body);
    let creds = &sim.config.credentials;
    if fields.get("grant_type").map(String::as_str) != Some("refresh_token") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type", "error_description": "Only the refresh_token grant is supported"})),
        )
            .into_response();
    }
    let valid = fields.get("refresh_token") == Some(&creds.refresh_token)
        && fields.get("client_secret") == Some(&creds.client_secret);
    if !valid {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_grant", "error_description": "Invalid refresh token or client secret"})),
        )
            .into_response();
    }
    let ttl = sim.config.token_ttl;
    let token = sim.issue_token(TokenKind::Access, ttl);
    Json(json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl.as_secs()}))
        .into_response()
}

fn user() -> Value {
    json!({"email": "demo@example.invalid", "username": "demotrader", "external-id": "U0001234567", "is-confirmed": true})
}

async fn create_session(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let fields = body_fields(&body);
    let creds = &sim.config.credentials;
    let login_ok = fields.get("login") == Some(&creds.login);
    let password_ok = fields.get("password") == Some(&creds.password)
        || fields
            .get("remember-token")
            .is_some_and(|t| t.starts_with("simrt"));
    if !(login_ok && password_ok) {
        return rest_error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid login, please check your username and password",
        );
    }
    let ttl = Duration::from_secs(24 * 3600);
    let token = sim.issue_token(TokenKind::Session, ttl);
    let expiration = chrono::Utc::now() + chrono::Duration::hours(24);
    (
        StatusCode::CREATED,
        Json(json!({
            "data": {
                "user": user(),
                "session-token": token,
                "remember-token": format!("simrt{}", &token[5..]),
                "session-expiration": expiration.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            },
            "context": "/sessions",
        })),
    )
        .into_response()
}

async fn validate_session(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    match authorize(&sim, &headers) {
        Ok(()) => (
            StatusCode::CREATED,
            Json(json!({"data": user(), "context": "/sessions/validate"})),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn delete_session(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    match authorize(&sim, &headers) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn customer(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Err(error) = authorize(&sim, &headers) {
        return error.into_response();
    }
    data_envelope(demo_data::customer(), "/customers/me")
}

async fn customer_accounts(State(sim): State<Arc<Sim>>, headers: HeaderMap) -> Response {
    if let Err(error) = authorize(&sim, &headers) {
        return error.into_response();
    }
    let items = sim
        .lock()
        .accounts
        .iter()
        .map(|a| json!({"account": a.account, "authority-level": "owner"}))
        .collect();
    items_envelope(items, "/customers/me/accounts")
}

async fn balances(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let number = params.get("number").cloned().unwrap_or_default();
    if let Err(error) = account_access(&sim, &headers, &number) {
        return error.into_response();
    }
    if params.get("currency").is_some_and(|c| c != "USD") {
        return rest_error(
            StatusCode::NOT_FOUND,
            "record_not_found",
            "Balance not found",
        );
    }
    let balance = sim
        .lock()
        .account(&number)
        .map(|a| a.balance.clone())
        .unwrap_or_default();
    // `context` echoes the request path, as on every other endpoint.
    let context = match params.get("currency") {
        Some(currency) => format!("/accounts/{number}/balances/{currency}"),
        None => format!("/accounts/{number}/balances"),
    };
    data_envelope(balance, &context)
}

async fn positions(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> Response {
    match read_account(&sim, &headers, &number, |a| a.positions.clone()) {
        Ok(items) => items_envelope(items, &format!("/accounts/{number}/positions")),
        Err(error) => error.into_response(),
    }
}

/// Today's orders, every status, paginated as tastytrade paginates (`per-page`, `page-offset`).
async fn live_orders(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(number): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(error) = account_access(&sim, &headers, &number) {
        return error.into_response();
    }
    let per_page: usize = query
        .get("per-page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .clamp(1, 250);
    let page: usize = query
        .get("page-offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let orders = sim
        .lock()
        .account(&number)
        .map(|a| a.orders.clone())
        .unwrap_or_default();
    let total = orders.len();
    let total_pages = total.div_ceil(per_page).max(1);
    let items: Vec<Value> = orders
        .into_iter()
        .skip(page * per_page)
        .take(per_page)
        .collect();
    let context = format!("/accounts/{number}/orders/live");
    Json(json!({
        "data": {"items": items},
        "context": context,
        "pagination": {
            "per-page": per_page,
            "page-offset": page,
            "item-offset": page * per_page,
            "total-items": total,
            "total-pages": total_pages,
            "current-item-count": items.len(),
            "previous-link": null,
            "next-link": null,
            "paging-link-template": null,
        },
    }))
    .into_response()
}

async fn one_order(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path((number, id)): Path<(String, String)>,
) -> Response {
    if let Err(error) = account_access(&sim, &headers, &number) {
        return error.into_response();
    }
    let found = sim.lock().account(&number).and_then(|a| {
        a.orders
            .iter()
            .find(|o| id_text(o.get("id")).as_deref() == Some(id.as_str()))
            .cloned()
    });
    match found {
        Some(order) => data_envelope(order, &format!("/accounts/{number}/orders/{id}")),
        None => rest_error(StatusCode::NOT_FOUND, "record_not_found", "Order not found"),
    }
}

async fn complex_orders(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> Response {
    match read_account(&sim, &headers, &number, |a| a.complex_orders.clone()) {
        Ok(items) => items_envelope(items, &format!("/accounts/{number}/complex-orders/live")),
        Err(error) => error.into_response(),
    }
}

async fn trading_status(
    State(sim): State<Arc<Sim>>,
    headers: HeaderMap,
    Path(number): Path<String>,
) -> Response {
    match read_account(&sim, &headers, &number, |a| a.trading_status.clone()) {
        Ok(status) => data_envelope(status, &format!("/accounts/{number}/trading-status")),
        Err(error) => error.into_response(),
    }
}
