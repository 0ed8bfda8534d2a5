//! How a journal message looks in the JetStream stream: a JSON payload (an event's draft, or
//! a checkpoint of the whole state) and headers that chain it to the account's previous
//! message and event, so a replica can tell a continuous history from a broken one.

use async_nats::HeaderMap;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::log::Draft;
use crate::log::ring::Replicated;
use crate::model::state::AccountState;
use crate::model::{EventKind, Position, Snapshot, Source};

/// `event` or `checkpoint`.
pub const TYPE: &str = "Ttgw-Type";
/// The seq of the account's message before this one (what the append was fenced on).
pub const PREV_MESSAGE: &str = "Ttgw-Prev-Message";
/// The seq of the account's event before this one.
pub const PREV_EVENT: &str = "Ttgw-Prev-Event";

#[derive(Serialize, Deserialize)]
struct EventBody {
    kind: String,
    source: Source,
    #[serde(default)]
    timestamp: Option<i64>,
    received_at: DateTime<Utc>,
    data: Value,
}

#[derive(Serialize, Deserialize, Default)]
struct CheckpointBody {
    balance: Option<Value>,
    trading_status: Option<Value>,
    positions: Vec<Value>,
    orders: Vec<Value>,
    complex_orders: Vec<Value>,
}

/// One message the leader sends, already serialised (its headers are added at send time,
/// when the previous message's seq is known).
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub checkpoint: bool,
    pub payload: Bytes,
}

impl Outgoing {
    pub fn event(draft: &Draft) -> Self {
        let body = EventBody {
            kind: draft.kind.as_str().to_string(),
            source: draft.source,
            timestamp: draft.timestamp,
            received_at: Utc::now(),
            data: draft.data.clone(),
        };
        Self {
            checkpoint: false,
            payload: serde_json::to_vec(&body).unwrap_or_default().into(),
        }
    }

    pub fn checkpoint(state: &AccountState) -> Self {
        let position = Position {
            epoch: crate::model::Epoch::from_millis(0),
            seq: 0,
        };
        let snapshot = Snapshot::of("", &position, state);
        let body = CheckpointBody {
            balance: snapshot.balance,
            trading_status: snapshot.trading_status,
            positions: snapshot.positions,
            orders: snapshot.orders,
            complex_orders: snapshot.complex_orders,
        };
        Self {
            checkpoint: true,
            payload: serde_json::to_vec(&body).unwrap_or_default().into(),
        }
    }

    /// The headers of this message sent after `prev_message` / `prev_event`.
    pub fn headers(&self, msg_id: &str, prev_message: u64, prev_event: u64) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", msg_id);
        headers.insert(
            "Nats-Expected-Last-Subject-Sequence",
            prev_message.to_string().as_str(),
        );
        headers.insert(
            TYPE,
            if self.checkpoint {
                "checkpoint"
            } else {
                "event"
            },
        );
        headers.insert(PREV_MESSAGE, prev_message.to_string().as_str());
        headers.insert(PREV_EVENT, prev_event.to_string().as_str());
        headers
    }
}

fn header_u64(headers: Option<&HeaderMap>, name: &str) -> Option<u64> {
    headers?.get(name)?.as_str().parse().ok()
}

/// Reads a stored message at stream seq `seq` back into what a replica applies.
pub fn read(seq: u64, headers: Option<&HeaderMap>, payload: &[u8]) -> Result<Replicated, String> {
    let prev_message =
        header_u64(headers, PREV_MESSAGE).ok_or("a message without its chain header")?;
    let kind = headers
        .and_then(|h| h.get(TYPE))
        .map(|v| v.as_str().to_string());
    match kind.as_deref() {
        Some("checkpoint") => {
            let body: CheckpointBody =
                serde_json::from_slice(payload).map_err(|e| format!("checkpoint: {e}"))?;
            let snapshot = Snapshot {
                account: String::new(),
                epoch: crate::model::Epoch::from_millis(0),
                seq: 0,
                as_of: Utc::now(),
                balance: body.balance,
                trading_status: body.trading_status,
                positions: body.positions,
                orders: body.orders,
                complex_orders: body.complex_orders,
            };
            Ok(Replicated::Checkpoint {
                seq,
                prev_message,
                state: AccountState::from_snapshot(snapshot),
            })
        }
        Some("event") => {
            let body: EventBody =
                serde_json::from_slice(payload).map_err(|e| format!("event: {e}"))?;
            let prev_event =
                header_u64(headers, PREV_EVENT).ok_or("an event without its chain header")?;
            Ok(Replicated::Event {
                seq,
                prev_message,
                prev_event,
                draft: Draft {
                    // A journal is input too: a kind that would break an SSE line is cleaned.
                    kind: EventKind::named(&crate::upstream::wire::safe_kind(&body.kind)),
                    data: body.data,
                    timestamp: body.timestamp,
                    source: body.source,
                },
                received_at: body.received_at,
            })
        }
        _ => Err("a message of no known type".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_and_checkpoints_read_back_as_sent() {
        let draft = Draft {
            kind: EventKind::Order,
            data: json!({"id": 7, "status": "Live"}),
            timestamp: Some(5),
            source: Source::Stream,
        };
        let out = Outgoing::event(&draft);
        let headers = out.headers("main.3.1", 10, 8);
        let Ok(Replicated::Event {
            seq,
            prev_message,
            prev_event,
            draft: back,
            ..
        }) = read(12, Some(&headers), &out.payload)
        else {
            panic!("an event");
        };
        assert_eq!((seq, prev_message, prev_event), (12, 10, 8));
        assert_eq!(back.data, draft.data);
        assert_eq!(back.kind, EventKind::Order);

        let mut state = AccountState::default();
        state.apply(&EventKind::Order, &draft.data);
        let out = Outgoing::checkpoint(&state);
        let Ok(Replicated::Checkpoint { state: back, .. }) =
            read(13, Some(&out.headers("main.3.2", 12, 12)), &out.payload)
        else {
            panic!("a checkpoint");
        };
        assert_eq!(back, state);
        assert!(read(14, None, b"{}").is_err(), "no chain header");
    }
}
