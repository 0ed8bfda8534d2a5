//! Parsing of Account Streamer frames: single or batched in `results`, notifications (`type`)
//! told apart from acks and errors (`action`/`status`) by their keys. Objects stay raw JSON
//! (full objects, unknown fields kept); number-or-string drift is read tolerantly. A bad
//! frame or batch element is reported, never fatal, and never costs its valid neighbours.

use serde_json::{Map, Value};

use crate::model::wire_types::{as_u64, epoch_millis};

/// One thing the streamer said.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Notification(Notification),
    Reply(Reply),
}

/// A pushed object: `{"type", "data", "timestamp"}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// The event type, restricted to `[A-Za-z0-9_.-]` so it is safe in SSE `event:` lines.
    pub kind: String,
    pub data: Value,
    /// Upstream publication time, epoch milliseconds.
    pub timestamp: Option<i64>,
}

/// An ack or error for an action we sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub ok: bool,
    pub action: String,
    pub request_id: Option<u64>,
    pub message: Option<String>,
    pub value: Option<Value>,
}

/// Why a frame (or one element of a batch) was skipped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame is not valid JSON")]
    NotJson,
    #[error("frame is not a JSON object")]
    NotObject,
    #[error("object is neither a notification nor a reply")]
    Unrecognised,
}

/// Parses one WebSocket text message into frames, plus the errors of what was skipped.
pub fn parse(text: &str) -> (Vec<Frame>, Vec<FrameError>) {
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(_) => return (Vec::new(), vec![FrameError::NotJson]),
    };
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    match value {
        Value::Object(mut map) => match map.remove("results") {
            Some(Value::Array(items))
                if !map.contains_key("type") && !map.contains_key("action") =>
            {
                for item in items {
                    match item {
                        Value::Object(obj) => push(obj, &mut frames, &mut errors),
                        _ => errors.push(FrameError::NotObject),
                    }
                }
            }
            Some(other) => {
                map.insert("results".into(), other);
                push(map, &mut frames, &mut errors);
            }
            None => push(map, &mut frames, &mut errors),
        },
        _ => errors.push(FrameError::NotObject),
    }
    (frames, errors)
}

fn push(map: Map<String, Value>, frames: &mut Vec<Frame>, errors: &mut Vec<FrameError>) {
    match classify(map) {
        Ok(frame) => frames.push(frame),
        Err(error) => errors.push(error),
    }
}

fn classify(mut map: Map<String, Value>) -> Result<Frame, FrameError> {
    if let Some(Value::String(kind)) = map.get("type")
        && map.contains_key("data")
    {
        let kind = safe_kind(kind);
        let timestamp = map.get("timestamp").and_then(epoch_millis);
        let data = map.remove("data").unwrap_or(Value::Null);
        return Ok(Frame::Notification(Notification {
            kind,
            data,
            timestamp,
        }));
    }
    if let Some(Value::String(status)) = map.get("status") {
        let ok = status == "ok";
        let action = map
            .get("action")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let request_id = map.get("request-id").and_then(as_u64);
        let message = map
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string);
        let value = map.remove("value");
        return Ok(Frame::Reply(Reply {
            ok,
            action,
            request_id,
            message,
            value,
        }));
    }
    Err(FrameError::Unrecognised)
}

/// Keeps event type names safe for SSE lines and metric labels.
pub fn safe_kind(kind: &str) -> String {
    let cleaned: String = kind
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "Unknown".to_string()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tells_notifications_from_replies_and_unwraps_batches() {
        let (frames, errors) = parse(
            r#"{"results":[{"type":"Order","data":{"id":1},"timestamp":5},{"status":"ok","action":"heartbeat","request-id":"7"},3]}"#,
        );
        assert_eq!(errors, vec![FrameError::NotObject]);
        assert_eq!(
            frames,
            vec![
                Frame::Notification(Notification {
                    kind: "Order".into(),
                    data: json!({"id": 1}),
                    timestamp: Some(5)
                }),
                Frame::Reply(Reply {
                    ok: true,
                    action: "heartbeat".into(),
                    request_id: Some(7),
                    message: None,
                    value: None
                }),
            ]
        );
    }

    #[test]
    fn junk_is_reported_not_fatal() {
        assert_eq!(parse("{\"type\":").1, vec![FrameError::NotJson]);
        assert_eq!(parse("[1]").1, vec![FrameError::NotObject]);
        assert_eq!(parse("{\"hello\":1}").1, vec![FrameError::Unrecognised]);
    }

    #[test]
    fn event_names_are_sanitised() {
        let (frames, _) = parse(r#"{"type":"Evil\nevent: x","data":{}}"#);
        let Frame::Notification(n) = &frames[0] else {
            panic!("not a notification")
        };
        assert_eq!(n.kind, "Evil_event__x");
    }

    #[test]
    fn reads_every_timestamp_form() {
        assert_eq!(epoch_millis(&json!(1748613301843_i64)), Some(1748613301843));
        assert_eq!(
            epoch_millis(&json!("2025-05-30T13:55:00.653+00:00")),
            Some(1748613300653)
        );
        assert_eq!(
            epoch_millis(&json!("2025-05-30T13:55:00.653Z")),
            Some(1748613300653)
        );
        assert_eq!(
            epoch_millis(&json!("2025-05-30T13:55:00.653+0000")),
            Some(1748613300653)
        );
        assert_eq!(epoch_millis(&json!("soon")), None);
    }
}
