//! REST reads of one part of an account's state: balance, positions (filter by underlying
//! and instrument type), orders (working by default, `status=all` for today's, or named
//! statuses), complex orders and trading status. Each body carries the `seq` it is exact at
//! and `as_of`; `ETag` is `"<epoch>-<seq>"`, so `If-None-Match` turns a poll into a 304.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::model::Snapshot;
use crate::model::{events, state};

/// Order statuses that are still working (not terminal).
pub const WORKING_STATUSES: [&str; 7] = [
    "Received",
    "Routed",
    "In Flight",
    "Live",
    "Contingent",
    "Cancel Requested",
    "Replace Requested",
];
/// Every order status tastytrade documents.
pub const ALL_STATUSES: [&str; 13] = [
    "Received",
    "Routed",
    "In Flight",
    "Live",
    "Filled",
    "Cancelled",
    "Expired",
    "Rejected",
    "Contingent",
    "Cancel Requested",
    "Replace Requested",
    "Removed",
    "Partially Removed",
];

/// One part of an account, exact at `seq`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Part<T: ToSchema> {
    /// The account's public id.
    pub account: String,
    /// The sequence number this body is exact at.
    pub seq: u64,
    /// When it was read.
    pub as_of: DateTime<Utc>,
    #[serde(flatten)]
    pub body: T,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalanceBody {
    /// tastytrade `AccountBalance`, masked; money as decimal strings.
    #[schema(value_type = Option<events::AccountBalance>, required = true)]
    pub balance: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PositionsBody {
    /// tastytrade `CurrentPosition` objects, masked.
    #[schema(value_type = Vec<events::CurrentPosition>)]
    pub positions: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrdersBody {
    /// tastytrade `Order` objects, masked, by id.
    #[schema(value_type = Vec<events::Order>)]
    pub orders: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplexOrdersBody {
    /// tastytrade `ComplexOrder` objects, masked, by id.
    #[schema(value_type = Vec<events::ComplexOrder>)]
    pub complex_orders: Vec<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TradingStatusBody {
    /// tastytrade `TradingStatus`, masked.
    #[schema(value_type = Option<events::TradingStatus>, required = true)]
    pub trading_status: Option<Value>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; read from a map so unknown keys get a clear 400
pub struct PositionsQuery {
    /// Only positions whose `underlying-symbol` is this (case-insensitive), e.g. `SPY`.
    underlying: Option<String>,
    /// Only this `instrument-type`, e.g. `Equity Option`.
    instrument_type: Option<String>,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the query; read from a map so unknown keys get a clear 400
pub struct OrdersQuery {
    /// `working` (default: Received, Routed, In Flight, Live, Contingent, Cancel Requested,
    /// Replace Requested), `all` (today's orders, terminal ones included), or a comma list of
    /// statuses (`Filled,Cancelled`).
    #[param(
        pattern = r"^(working|all|(Received|Routed|In Flight|Live|Filled|Cancelled|Expired|Rejected|Contingent|Cancel Requested|Replace Requested|Removed|Partially Removed)(,(Received|Routed|In Flight|Live|Filled|Cancelled|Expired|Rejected|Contingent|Cancel Requested|Replace Requested|Removed|Partially Removed))*)$"
    )]
    status: Option<String>,
}

/// The longest caller-chosen name an error message repeats.
const ECHO_MAX: usize = 40;

/// Refuses query keys outside `allowed` (`access_token` is taken everywhere), naming them
/// (each cut to [`ECHO_MAX`] characters; the error body is masked as a whole).
fn only(query: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<String> = query
        .keys()
        .map(String::as_str)
        .filter(|k| !allowed.contains(k) && *k != "access_token")
        .map(|k| k.chars().take(ECHO_MAX).collect())
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort_unstable();
    let allowed = if allowed.is_empty() {
        "none".to_string()
    } else {
        allowed.join(", ")
    };
    Err(ApiError::BadRequest(format!(
        "unknown query parameter(s) {}; accepted: {allowed}",
        unknown.join(", ")
    )))
}

fn etag(snapshot: &Snapshot) -> String {
    format!("\"{}\"", snapshot.position())
}

/// 304 when the caller already holds this version.
fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|candidate| candidate.trim() == tag || candidate.trim() == "*")
        })
}

/// Answers with `body` (or 304), tagged with the snapshot's version.
pub fn versioned<T: Serialize>(headers: &HeaderMap, snapshot: &Snapshot, body: T) -> Response {
    let tag = etag(snapshot);
    let mut response = if not_modified(headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Json(body).into_response()
    };
    if let Ok(value) = HeaderValue::from_str(&tag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn part<T: ToSchema>(snapshot: &Snapshot, body: T) -> Part<T> {
    Part {
        account: snapshot.account.clone(),
        seq: snapshot.seq,
        as_of: snapshot.as_of,
        body,
    }
}

/// Answers a part route: checks the query keys, reads the account's snapshot (404/403 as
/// due), builds the part from it and tags the answer with its version (or answers 304).
fn answer<T: ToSchema + Serialize>(
    app: &AppState,
    caller: &Caller,
    id: &str,
    query: &HashMap<String, String>,
    allowed: &[&str],
    headers: &HeaderMap,
    body: impl FnOnce(&Snapshot) -> Result<T, ApiError>,
) -> Result<Response, ApiError> {
    only(query, allowed)?;
    let snapshot = caller.account(app, id)?.snapshot();
    let part = part(&snapshot, body(&snapshot)?);
    Ok(versioned(headers, &snapshot, part))
}

/// The error answers every part route shares.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // describes responses; never built
pub enum PartErrors {
    /// Unchanged since the ETag given (If-None-Match)
    #[response(status = 304)]
    NotModified,
    /// Unknown query parameter or value
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No valid API key
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// No account with that id, or one the key may not see (the two answer alike)
    #[response(status = 404)]
    NotFound(ErrorBody),
}

/// The account's balance.
#[utoipa::path(get, path = "/v1/accounts/{id}/balance", operation_id = "getBalance", tag = "accounts",
    params(("id" = String, Path, description = "The account's public id"), ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses((status = 200, description = "The balance, exact at `seq`", body = Part<BalanceBody>, headers(("ETag" = String, description = "\"<epoch>-<seq>\""))), PartErrors),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn balance(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(&app, &caller, &id, &query, &[], &headers, |s| {
        Ok(BalanceBody {
            balance: s.balance.clone(),
        })
    })
}

fn matches_ci(value: Option<&Value>, wanted: &str) -> bool {
    value
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
}

/// The account's positions.
#[utoipa::path(get, path = "/v1/accounts/{id}/positions", operation_id = "getPositions", tag = "accounts",
    params(("id" = String, Path, description = "The account's public id"), PositionsQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses((status = 200, description = "Positions, exact at `seq`", body = Part<PositionsBody>, headers(("ETag" = String, description = "\"<epoch>-<seq>\""))), PartErrors),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn positions(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(
        &app,
        &caller,
        &id,
        &query,
        &["underlying", "instrument_type"],
        &headers,
        |s| {
            let positions = s
                .positions
                .iter()
                .filter(|p| {
                    query
                        .get("underlying")
                        .is_none_or(|u| matches_ci(state::position_underlying(p), u))
                })
                .filter(|p| {
                    query
                        .get("instrument_type")
                        .is_none_or(|t| matches_ci(state::position_instrument(p), t))
                })
                .cloned()
                .collect();
            Ok(PositionsBody { positions })
        },
    )
}

/// Which statuses an `OrdersQuery.status` selects: exactly what its documented pattern
/// accepts (`working`, `all`, or a comma list of tastytrade's status names).
fn statuses(filter: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    match filter {
        None | Some("working") => Ok(Some(
            WORKING_STATUSES.iter().map(|s| s.to_string()).collect(),
        )),
        Some("all") => Ok(None),
        Some(list) => list
            .split(',')
            .map(|name| {
                ALL_STATUSES
                    .iter()
                    .find(|s| **s == name)
                    .map(|s| s.to_string())
            })
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "status must be `working`, `all` or a comma list of: {}",
                    ALL_STATUSES.join(", ")
                ))
            }),
    }
}

/// The account's orders of today: working ones by default.
#[utoipa::path(get, path = "/v1/accounts/{id}/orders", operation_id = "getOrders", tag = "accounts",
    params(("id" = String, Path, description = "The account's public id"), OrdersQuery, ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses((status = 200, description = "Orders, exact at `seq`", body = Part<OrdersBody>, headers(("ETag" = String, description = "\"<epoch>-<seq>\""))), PartErrors),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn orders(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(&app, &caller, &id, &query, &["status"], &headers, |s| {
        let wanted = statuses(query.get("status").map(String::as_str))?;
        let orders = s
            .orders
            .iter()
            .filter(|o| match &wanted {
                None => true,
                Some(list) => state::order_status(o).is_some_and(|s| list.iter().any(|w| w == s)),
            })
            .cloned()
            .collect();
        Ok(OrdersBody { orders })
    })
}

/// The account's complex orders (OCO, OTOCO, ...).
#[utoipa::path(get, path = "/v1/accounts/{id}/complex-orders", operation_id = "getComplexOrders", tag = "accounts",
    params(("id" = String, Path, description = "The account's public id"), ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses((status = 200, description = "Complex orders, exact at `seq`", body = Part<ComplexOrdersBody>, headers(("ETag" = String, description = "\"<epoch>-<seq>\""))), PartErrors),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn complex_orders(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(&app, &caller, &id, &query, &[], &headers, |s| {
        Ok(ComplexOrdersBody {
            complex_orders: s.complex_orders.clone(),
        })
    })
}

/// The account's trading status.
#[utoipa::path(get, path = "/v1/accounts/{id}/trading-status", operation_id = "getTradingStatus", tag = "accounts",
    params(("id" = String, Path, description = "The account's public id"), ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses((status = 200, description = "Trading status, exact at `seq`", body = Part<TradingStatusBody>, headers(("ETag" = String, description = "\"<epoch>-<seq>\""))), PartErrors),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn trading_status(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(&app, &caller, &id, &query, &[], &headers, |s| {
        Ok(TradingStatusBody {
            trading_status: s.trading_status.clone(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters() {
        assert_eq!(
            statuses(None).unwrap().unwrap().len(),
            WORKING_STATUSES.len()
        );
        assert_eq!(statuses(Some("all")).unwrap(), None);
        assert_eq!(
            statuses(Some("Filled,Cancelled")).unwrap(),
            Some(vec!["Filled".to_string(), "Cancelled".to_string()])
        );
        for refused in ["Done", "", "filled", "Filled,", "Filled, Cancelled"] {
            assert!(statuses(Some(refused)).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn unknown_query_keys_are_named() {
        let query: HashMap<String, String> = [("colour".to_string(), "red".to_string())].into();
        let error = only(&query, &["status"]).unwrap_err().to_string();
        assert_eq!(error, "unknown query parameter(s) colour; accepted: status");
    }
}
