//! Health, for three audiences: `/livez` (the process answers: restart it if not),
//! `/readyz` (this node can serve: at least one account live, or every one with
//! `--ready-requires all`; a load balancer's question) and `/healthz` (always 200, with the
//! accounts that are degraded and why: a person's question). One flaky account no longer
//! takes a whole replica out of a load balancer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::AppState;
use crate::model::LinkState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, `degraded` (some account is not live) or `unavailable` (not ready to serve).
    pub status: String,
    /// Per degraded account: `<id>: <state> (<last error>)`.
    pub reasons: Vec<String>,
    /// The public ids of the accounts that are not live.
    pub degraded: Vec<String>,
}

/// Which accounts `/readyz` needs live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadyRequires {
    /// At least one account live.
    #[default]
    Any,
    /// Every account live.
    All,
}

/// The accounts that are not live, with their reasons.
fn degraded(app: &AppState) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut reasons = Vec::new();
    for account in app.registry.all() {
        let status = account.status();
        if status.state == LinkState::Live {
            continue;
        }
        let state = serde_json::to_value(status.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let id = &account.info.public_id;
        reasons.push(match status.last_error {
            Some(error) => format!("{id}: {state} ({error})"),
            None => format!("{id}: {state}"),
        });
        ids.push(id.clone());
    }
    (ids, reasons)
}

/// The process answers.
#[utoipa::path(get, path = "/livez", operation_id = "getLiveness", tag = "health", responses((status = 200, description = "The process answers (always `ok`)", body = Health)))]
pub async fn livez() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        reasons: Vec::new(),
        degraded: Vec::new(),
    })
}

/// Always 200: `ok`, or `degraded` naming the accounts that are not live and why.
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = "health", responses((status = 200, description = "Always 200: `degraded` and `reasons` name the accounts that are not live, and why", body = Health)))]
pub async fn healthz(State(app): State<AppState>) -> Json<Health> {
    let (degraded, mut reasons) = degraded(&app);
    let trouble = app.log.trouble();
    let status = if degraded.is_empty() && trouble.is_none() {
        "ok"
    } else {
        "degraded"
    };
    reasons.extend(trouble);
    Json(Health {
        status: status.into(),
        reasons,
        degraded,
    })
}

/// This node can serve: its listener answers and enough accounts are live
/// (`--ready-requires any`, the default: at least one; `all`: every one).
#[utoipa::path(get, path = "/readyz", operation_id = "getReadiness", tag = "health", responses(
    (status = 200, description = "Ready; `degraded` names accounts that are not live", body = Health),
    (status = 503, description = "Not ready: no account live (or, with --ready-requires all, some)", body = Health)))]
pub async fn readyz(State(app): State<AppState>) -> (StatusCode, Json<Health>) {
    let (degraded, mut reasons) = degraded(&app);
    let total = app.registry.all().len();
    let trouble = app.log.trouble();
    let ready = trouble.is_none()
        && match app.ready_requires {
            ReadyRequires::Any => degraded.len() < total,
            ReadyRequires::All => degraded.is_empty(),
        };
    reasons.extend(trouble);
    let (code, status) = match (ready, degraded.is_empty()) {
        (true, true) => (StatusCode::OK, "ok"),
        (true, false) => (StatusCode::OK, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    (
        code,
        Json(Health {
            status: status.into(),
            reasons,
            degraded,
        }),
    )
}
