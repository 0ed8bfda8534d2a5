//! The model: the only code that reads tastytrade's JSON keys. Typed events (`events`), event
//! kinds as an enum (`kind`), the state fold and the diff of a REST baseline (`state`), the
//! snapshot (`snapshot`), stream positions (`position`), tolerant value readers
//! (`wire_types`); here: where an event came from, how an account's upstream link is doing,
//! and the envelope every published event is serialised in. Upstream objects themselves stay
//! raw JSON (full objects, unknown fields kept).

pub mod events;
pub mod kind;
pub mod position;
pub mod snapshot;
pub mod state;
pub mod wire_schema;
pub mod wire_types;

pub use kind::EventKind;
pub use position::{Epoch, OrderedPositions, Position, Positions};
pub use snapshot::Snapshot;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a published event came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Pushed by tastytrade's Account Streamer.
    Stream,
    /// A difference found by re-reading tastytrade's REST API after a (re)connect.
    Resync,
    /// Said by the gateway itself (for example an upstream status change).
    Gateway,
}

/// The state of one account's upstream connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkState {
    Connecting,
    Resyncing,
    Live,
    BackingOff,
    Stopped,
}

/// How one account's upstream connection is doing; masked, safe to show.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct UpstreamStatus {
    pub state: LinkState,
    /// When `state` was entered.
    pub since: DateTime<Utc>,
    /// When the last upstream notification for this account arrived.
    pub last_event_at: Option<DateTime<Utc>>,
    /// Reconnects since start.
    pub reconnects: u64,
    /// The last error, masked.
    pub last_error: Option<String>,
    /// Upstream frames (or batch elements) skipped as unreadable.
    pub skipped_frames: u64,
    /// Events of a type the gateway does not know, passed through.
    pub unknown_events: u64,
    /// Events of a known type whose shape was broken, skipped.
    pub invalid_events: u64,
    /// Differences found by REST resyncs and published as events.
    pub resync_events: u64,
    /// The gateway node holding the account's upstream socket (clusters only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Default for UpstreamStatus {
    fn default() -> Self {
        Self {
            state: LinkState::Connecting,
            since: Utc::now(),
            last_event_at: None,
            reconnects: 0,
            last_error: None,
            skipped_frames: 0,
            unknown_events: 0,
            invalid_events: 0,
            resync_events: 0,
            node: None,
        }
    }
}

/// What every published event looks like, identical in SSE `data:`, WebSocket messages and
/// the event log.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<'a> {
    /// `<epoch>-<seq>`: the SSE `id`, and what to resume from.
    pub id: String,
    /// Position in the account's event log.
    pub seq: u64,
    /// The account's public id.
    pub account: &'a str,
    /// The tastytrade event type (`Order`, `AccountBalance`, `CurrentPosition`, ...).
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub source: Source,
    /// Upstream publication time, epoch milliseconds (none for resync events).
    pub timestamp: Option<i64>,
    /// When the gateway received it.
    pub received_at: DateTime<Utc>,
    /// The tastytrade object, masked, unknown fields kept.
    #[schema(value_type = Object)]
    pub data: &'a serde_json::Value,
}
