//! The simulator's wire vocabulary: tastytrade's REST envelopes, streamer acks and errors as
//! captured (shared/protocol §1.4, §3.2), notification frames, timestamps and decimal strings.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

/// ISO timestamp as tastytrade prints it: milliseconds and `+00:00`.
pub fn iso(ts: DateTime<Utc>) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string()
}

pub fn iso_now() -> String {
    iso(Utc::now())
}

pub fn today() -> String {
    Utc::now().format("%Y-%m-%d").to_string()
}

/// A decimal as tastytrade writes money: a string, at least one fractional digit (`"0.0"`).
pub fn money(value: Decimal) -> Value {
    let value = value.round_dp(9).normalize();
    let text = value.to_string();
    Value::String(if text.contains('.') {
        text
    } else {
        format!("{text}.0")
    })
}

/// A quantity as tastytrade writes positions: a string, integral when it can be (`"100"`, `"100.29"`).
pub fn quantity(value: Decimal) -> Value {
    Value::String(value.normalize().to_string())
}

/// Reads a decimal that may arrive as a string or a number.
pub fn decimal(value: Option<&Value>) -> Decimal {
    match value {
        Some(Value::String(s)) => s.parse().unwrap_or_default(),
        Some(Value::Number(n)) => n.to_string().parse().unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

/// An object's id as a string, whether the wire carries it as a number or a string.
pub fn id_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One notification frame: `{"type":..,"data":..,"timestamp":<epoch ms>}`.
pub fn notification(kind: &str, data: &Value) -> Value {
    json!({"type": kind, "data": data, "timestamp": Utc::now().timestamp_millis()})
}

/// An ack for a streamer action; `request-id` echoed when the client sent one.
pub fn ack(
    action: &str,
    session_id: &str,
    value: Option<Value>,
    request_id: Option<&Value>,
) -> String {
    let mut frame = Map::new();
    frame.insert("status".into(), "ok".into());
    frame.insert("action".into(), action.into());
    frame.insert("web-socket-session-id".into(), session_id.into());
    if let Some(value) = value {
        frame.insert("value".into(), value);
    }
    if let Some(id) = request_id {
        frame.insert("request-id".into(), id.clone());
    }
    Value::Object(frame).to_string()
}

/// An error reply for a streamer action. As captured: `not-implemented` echoes the
/// `request-id`; `failed` and `connect-not-completed` come without one.
pub fn action_error(
    action: &str,
    session_id: &str,
    message: &str,
    request_id: Option<&Value>,
) -> String {
    let mut frame = Map::new();
    frame.insert("status".into(), "error".into());
    frame.insert("action".into(), action.into());
    frame.insert("web-socket-session-id".into(), session_id.into());
    frame.insert("message".into(), message.into());
    if message == "not-implemented"
        && let Some(id) = request_id
    {
        frame.insert("request-id".into(), id.clone());
    }
    Value::Object(frame).to_string()
}

/// `{"data": ..., "context": path}`: tastytrade's single-object envelope.
pub fn data_envelope(data: Value, context: &str) -> Response {
    Json(json!({"data": data, "context": context})).into_response()
}

/// `{"data": {"items": [...]}, "context": path}`: tastytrade's list envelope.
pub fn items_envelope(items: Vec<Value>, context: &str) -> Response {
    Json(json!({"data": {"items": items}, "context": context})).into_response()
}

/// An error reply of the simulator: an HTTP status and tastytrade's error envelope. Small,
/// so handlers return it by value; it becomes a response in one place.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SimError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl SimError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        rest_error(self.status, self.code, &self.message)
    }
}

/// tastytrade's error envelope with an HTTP status.
pub fn rest_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn money_keeps_tastytrade_shape() {
        assert_eq!(money(dec("10000")), json!("10000.0"));
        assert_eq!(money(dec("4337.831401355")), json!("4337.831401355"));
        assert_eq!(money(dec("-12.50")), json!("-12.5"));
        assert_eq!(quantity(dec("100.290")), json!("100.29"));
        assert_eq!(quantity(dec("2.0")), json!("2"));
    }

    #[test]
    fn errors_echo_request_id_only_for_not_implemented() {
        let id = json!(4);
        let ni: Value = serde_json::from_str(&action_error(
            "connect",
            "abcd0123",
            "not-implemented",
            Some(&id),
        ))
        .unwrap();
        assert_eq!(ni["request-id"], json!(4));
        let failed: Value =
            serde_json::from_str(&action_error("connect", "abcd0123", "failed", Some(&id)))
                .unwrap();
        assert!(failed.get("request-id").is_none());
        assert_eq!(failed["message"], json!("failed"));
    }
}
