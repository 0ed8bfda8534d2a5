//! Health: `/healthz` says the process is alive; `/readyz` says every account is live and
//! synced with tastytrade (503 with the reasons otherwise).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::AppState;
use crate::model::LinkState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` with reasons.
    pub status: String,
    /// Per account, why it is not ready.
    pub reasons: Vec<String>,
}

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        reasons: Vec::new(),
    })
}

/// Every configured account is live and synced.
#[utoipa::path(get, path = "/readyz", tag = "health", responses(
    (status = 200, description = "Every account is live", body = Health),
    (status = 503, description = "Some account is not live", body = Health)))]
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    let reasons: Vec<String> = app
        .registry
        .all()
        .iter()
        .filter_map(|account| {
            let status = account.status();
            (status.state != LinkState::Live).then(|| {
                let state = serde_json::to_value(status.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                match status.last_error {
                    Some(error) => format!("{}: {state} ({error})", account.info.public_id),
                    None => format!("{}: {state}", account.info.public_id),
                }
            })
        })
        .collect();
    if reasons.is_empty() {
        (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                reasons,
            }),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable".into(),
                reasons,
            }),
        )
    }
}
