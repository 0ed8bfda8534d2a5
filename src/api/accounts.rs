//! REST reads of the accounts: the list with each account's upstream status and current
//! `seq`, and the full snapshot of one account.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::model::Snapshot;
use crate::model::{LinkState, UpstreamStatus};

/// One served account; never its full number.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummary {
    /// Public id, used in every URL.
    pub id: String,
    /// `***` + the last four characters.
    pub account_number: String,
    pub nickname: Option<String>,
    pub account_type: Option<String>,
    /// The latest sequence number published for this account.
    pub seq: u64,
    /// `ok` while the upstream link is live, else `degraded` (see `upstream`).
    pub health: String,
    pub upstream: UpstreamStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountList {
    pub accounts: Vec<AccountSummary>,
}

/// Lists the served accounts.
#[utoipa::path(get, path = "/v1/accounts", operation_id = "listAccounts", tag = "accounts",
    responses(
        (status = 200, description = "The accounts the caller may see", body = AccountList),
        (status = 401, description = "No valid API key", body = ErrorBody),
    ),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn list(State(app): State<AppState>, caller: Caller) -> Json<AccountList> {
    let accounts = caller
        .visible(&app)
        .iter()
        .map(|account| {
            let upstream = account.status();
            AccountSummary {
                id: account.info.public_id.clone(),
                account_number: account.info.masked_number.clone(),
                nickname: account.info.nickname.clone(),
                account_type: account.info.account_type.clone(),
                seq: account.seq(),
                health: if upstream.state == LinkState::Live {
                    "ok"
                } else {
                    "degraded"
                }
                .into(),
                upstream,
            }
        })
        .collect();
    Json(AccountList { accounts })
}

/// The account's full state, exact at `seq`.
#[utoipa::path(get, path = "/v1/accounts/{id}/snapshot", operation_id = "getSnapshot", tag = "accounts",
    params(("id" = String, Path, description = "The account's public id"), ("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses(
        (status = 200, description = "Balance, positions, today's orders, complex orders and trading status", body = Snapshot, headers(("ETag" = String, description = "\"<epoch>-<seq>\""))),
        (status = 304, description = "Unchanged since the ETag given (If-None-Match)"),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "The key may not see this account", body = ErrorBody),
        (status = 404, description = "No account with that id", body = ErrorBody),
    ),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn snapshot(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snapshot = caller.account(&app, &id)?.snapshot();
    Ok(super::parts::versioned(&headers, &snapshot, &snapshot))
}
