//! The simulator's control API under `/sim/` (JSON): inject events or raw frames, read the
//! truth per account, pause or speed up the market script, and arm faults. Tests, the demo and
//! the benchmark drive the simulator through it, over HTTP like any other client.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::state::{Channel, Outbound, ScriptSettings, Sim, SocketFault};
use super::wire::{SimError, notification};

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/sim", get(index))
        .route("/sim/", get(index))
        .route("/sim/truth", get(all_truth))
        .route("/sim/accounts/{number}/truth", get(account_truth))
        .route("/sim/accounts/{number}/events", post(inject_account))
        .route("/sim/events", post(inject_user))
        .route("/sim/script", get(script).post(set_script))
        .route("/sim/faults", get(faults).delete(clear_faults))
        .route("/sim/faults/{name}", post(arm_fault))
        .route("/sim/stats", get(stats))
        .route("/sim/sockets", get(sockets))
        .route("/sim/attempts", get(attempts))
        .route("/sim/day-roll", post(day_roll))
        .with_state(sim)
}

fn bad_request(message: impl Into<String>) -> Response {
    SimError::new(StatusCode::BAD_REQUEST, "bad_request", message).into_response()
}

fn invalid(message: impl Into<String>) -> SimError {
    SimError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn not_found(message: &str) -> Response {
    SimError::new(StatusCode::NOT_FOUND, "not_found", message).into_response()
}

/// Parses an optional JSON object body (an empty body is `{}`).
fn object_body(body: &Bytes) -> Result<serde_json::Map<String, Value>, SimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid("the body must be a JSON object")),
        Err(error) => Err(invalid(format!("the body is not JSON: {error}"))),
    }
}

async fn index() -> Json<Value> {
    Json(json!({
        "simulator": "tastytrade Account Streamer + REST",
        "streamer": "/streamer",
        "control": {
            "GET /sim/truth": "every account's truth (balance, positions, orders, complex-orders, trading-status)",
            "GET /sim/accounts/{number}/truth": "one account's truth",
            "POST /sim/accounts/{number}/events": "{\"type\",\"data\"} | {\"events\":[...],\"batch\":bool} | {\"raw\":\"<frame>\"}",
            "POST /sim/events": "{\"channel\":\"quote-alerts|public-watchlists|user-messages\",\"type\",\"data\"} | {\"channel\",\"raw\"}",
            "GET|POST /sim/script": "{\"paused\":bool,\"rate\":steps_per_second}",
            "POST /sim/faults/{name}": "drop | close {reason} | silent {enabled} | malformed | oversized {bytes,fragmented} | expire-tokens | rest-errors {count,status,retry_after_secs} | latency {ms} | outage {secs} (drops every socket; REST and streamer answer 503 for secs; with {account}: that account's socket and REST calls only); socket faults take an optional {account}",
            "DELETE /sim/faults": "clear silent, REST errors, latency and an outage",
            "POST /sim/day-roll": "a new trading day: terminal orders and complex orders leave /orders/live (no stream event, as on tastytrade)",
            "GET /sim/attempts": "[[ms, \"streamer\"|\"rest\"], ...]: when each streamer handshake and account REST call came (ms since start)",
            "GET /sim/stats": "counters (messages, heartbeats, expired-token messages, ...)",
            "GET /sim/sockets": "open streamer sockets per account that connected it (a cluster must hold one each)",
        }
    }))
}

async fn all_truth(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let state = sim.lock();
    let accounts: Vec<Value> = state
        .accounts
        .iter()
        .filter(|a| !a.closed)
        .map(|a| a.truth())
        .collect();
    Json(json!({ "accounts": accounts }))
}

async fn account_truth(State(sim): State<Arc<Sim>>, Path(number): Path<String>) -> Response {
    match sim.lock().account(&number) {
        Some(account) => Json(account.truth()).into_response(),
        None => not_found("no such account"),
    }
}

/// Reads `{"type","data"}` into an event; `account-number` defaults to the account's.
fn event_of(value: &Value, number: &str) -> Result<(String, Value), SimError> {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("an event needs a string \"type\""))?;
    let mut data = value
        .get("data")
        .cloned()
        .ok_or_else(|| invalid("an event needs \"data\""))?;
    if let Value::Object(map) = &mut data {
        map.entry("account-number").or_insert_with(|| json!(number));
    }
    Ok((kind.to_string(), data))
}

async fn inject_account(
    State(sim): State<Arc<Sim>>,
    Path(number): Path<String>,
    body: Bytes,
) -> Response {
    let body = match object_body(&body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    if sim.lock().account(&number).is_none() {
        return not_found("no such account");
    }
    if let Some(raw) = body.get("raw") {
        let Some(raw) = raw.as_str() else {
            return bad_request("\"raw\" must be a string");
        };
        sim.publish(Outbound::Notify {
            channel: Channel::Account(number),
            text: raw.into(),
        });
        return (StatusCode::ACCEPTED, Json(json!({"sent": "raw"}))).into_response();
    }
    let (events, batch) = match body.get("events") {
        Some(Value::Array(items)) => {
            let mut events = Vec::with_capacity(items.len());
            for item in items {
                match event_of(item, &number) {
                    Ok(event) => events.push(event),
                    Err(error) => return error.into_response(),
                }
            }
            (
                events,
                body.get("batch").and_then(Value::as_bool).unwrap_or(false),
            )
        }
        Some(_) => return bad_request("\"events\" must be an array"),
        None => match event_of(&Value::Object(body.clone()), &number) {
            Ok(event) => (vec![event], false),
            Err(error) => return error.into_response(),
        },
    };
    let count = events.len();
    {
        let mut state = sim.lock();
        sim.emit_account(&mut state, &number, events, batch);
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({"sent": count, "batch": batch})),
    )
        .into_response()
}

async fn inject_user(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let body = match object_body(&body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let channel = match body.get("channel").and_then(Value::as_str) {
        Some("quote-alerts") => Channel::QuoteAlerts,
        Some("public-watchlists") => Channel::PublicWatchlists,
        Some("user-messages") => Channel::UserMessages,
        _ => {
            return bad_request(
                "\"channel\" must be quote-alerts, public-watchlists or user-messages",
            );
        }
    };
    let text = match (
        body.get("raw"),
        body.get("type").and_then(Value::as_str),
        body.get("data"),
    ) {
        (Some(Value::String(raw)), _, _) => raw.clone(),
        (None, Some(kind), Some(data)) => notification(kind, data).to_string(),
        _ => return bad_request("send {\"type\",\"data\"} or {\"raw\"}"),
    };
    sim.publish(Outbound::Notify {
        channel,
        text: text.into(),
    });
    (StatusCode::ACCEPTED, Json(json!({"sent": 1}))).into_response()
}

async fn script(State(sim): State<Arc<Sim>>) -> Json<ScriptSettings> {
    Json(*sim.script.borrow())
}

async fn set_script(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    let body = match object_body(&body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let mut settings = *sim.script.borrow();
    if let Some(paused) = body.get("paused") {
        match paused.as_bool() {
            Some(paused) => settings.paused = paused,
            None => return bad_request("\"paused\" must be a boolean"),
        }
    }
    if let Some(rate) = body.get("rate") {
        match rate.as_f64() {
            Some(rate) if rate.is_finite() && (0.0..=100_000.0).contains(&rate) => {
                settings.rate = rate
            }
            _ => {
                return bad_request(
                    "\"rate\" must be a number of steps per second from 0 to 100000",
                );
            }
        }
    }
    sim.script.send_replace(settings);
    Json(json!(settings)).into_response()
}

async fn faults(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let state = sim.lock();
    Json(json!({"silent": state.silent, "rest": state.rest_faults}))
}

async fn clear_faults(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let mut state = sim.lock();
    state.silent = false;
    state.rest_faults = Default::default();
    state.outage_until = None;
    state.account_outages.clear();
    Json(json!({"cleared": true}))
}

async fn arm_fault(State(sim): State<Arc<Sim>>, Path(name): Path<String>, body: Bytes) -> Response {
    let body = match object_body(&body) {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let account = match body.get("account") {
        None => None,
        Some(Value::String(number)) if sim.lock().account(number).is_some() => Some(number.clone()),
        Some(_) => {
            return bad_request("\"account\" must be one of the simulator's account numbers");
        }
    };
    let socket_fault = |fault| {
        sim.publish(Outbound::Fault {
            account: account.clone(),
            fault,
        });
        Json(json!({"armed": name})).into_response()
    };
    match name.as_str() {
        "drop" => socket_fault(SocketFault::Drop),
        "close" => {
            let reason = body.get("reason").and_then(Value::as_str).unwrap_or("Bye");
            if reason.len() > 123 {
                return bad_request("\"reason\" must be at most 123 bytes (a close frame's limit)");
            }
            socket_fault(SocketFault::CloseBye {
                reason: reason.to_string(),
            })
        }
        "malformed" => socket_fault(SocketFault::Malformed),
        "oversized" => {
            let bytes = body
                .get("bytes")
                .and_then(Value::as_u64)
                .unwrap_or(1_200_000);
            if !(1..=15 << 20).contains(&bytes) {
                return bad_request("\"bytes\" must be from 1 to 15728640");
            }
            let fragmented = body
                .get("fragmented")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            socket_fault(SocketFault::Oversized {
                bytes: bytes as usize,
                fragmented,
            })
        }
        "silent" => {
            let enabled = body.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            sim.lock().silent = enabled;
            Json(json!({"armed": name, "enabled": enabled})).into_response()
        }
        "expire-tokens" => {
            sim.expire_all_tokens();
            Json(json!({"armed": name})).into_response()
        }
        "rest-errors" => {
            let count = body.get("count").and_then(Value::as_u64).unwrap_or(1);
            let status = body.get("status").and_then(Value::as_u64).unwrap_or(500);
            if !(400..=599).contains(&status) {
                return bad_request("\"status\" must be an HTTP error status (400-599)");
            }
            let retry_after = body
                .get("retry_after_secs")
                .and_then(Value::as_u64)
                .unwrap_or(1);
            let mut state = sim.lock();
            state.rest_faults.errors_remaining = u32::try_from(count).unwrap_or(u32::MAX);
            state.rest_faults.error_status = status as u16;
            state.rest_faults.retry_after_secs = retry_after;
            Json(json!({"armed": name, "rest": state.rest_faults})).into_response()
        }
        "outage" => {
            let secs = body.get("secs").and_then(Value::as_f64).unwrap_or(2.0);
            if !(0.0..=3600.0).contains(&secs) {
                return bad_request("\"secs\" must be from 0 to 3600");
            }
            let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
            match &account {
                // One account down: its REST calls fail; its socket is dropped.
                Some(number) => {
                    sim.lock().account_outages.insert(number.clone(), until);
                }
                None => sim.lock().outage_until = Some(until),
            }
            socket_fault(SocketFault::Drop)
        }
        "latency" => {
            let ms = body.get("ms").and_then(Value::as_u64).unwrap_or(0);
            if ms > 60_000 {
                return bad_request("\"ms\" must be at most 60000");
            }
            sim.lock().rest_faults.latency_ms = ms;
            Json(json!({"armed": name, "ms": ms})).into_response()
        }
        _ => not_found("unknown fault; see GET /sim/"),
    }
}

async fn day_roll(State(sim): State<Arc<Sim>>) -> Json<Value> {
    const TERMINAL: [&str; 6] = [
        "Filled",
        "Cancelled",
        "Expired",
        "Rejected",
        "Removed",
        "Partially Removed",
    ];
    let working = |order: &Value| {
        !order
            .get("status")
            .and_then(Value::as_str)
            .is_some_and(|s| TERMINAL.contains(&s))
    };
    let mut state = sim.lock();
    let mut removed = 0;
    for account in &mut state.accounts {
        let before = account.orders.len() + account.complex_orders.len();
        account.orders.retain(working);
        account.complex_orders.retain(working);
        removed += before - account.orders.len() - account.complex_orders.len();
    }
    Json(json!({"removed": removed}))
}

async fn attempts(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let attempts = sim.attempts.lock().unwrap_or_else(|p| p.into_inner());
    Json(json!(attempts.iter().collect::<Vec<_>>()))
}

async fn stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(sim.stats_json())
}

async fn sockets(State(sim): State<Arc<Sim>>) -> Json<Value> {
    let sockets = sim.sockets.lock().unwrap_or_else(|p| p.into_inner());
    Json(json!(*sockets))
}
