//! The event log: the seam between the accounts (which append) and the api (which reads
//! snapshots and subscribes). Every backend offers the same few operations: append an
//! account's next event (the log assigns its position), subscribe from an optional position
//! (a start, then live events until the subscriber falls too far behind), the snapshot with
//! the position it is exact at, and the epoch positions count in.
//!
//! - [`ring`]: the in-process ring + broadcast, the embedded default.
//! - `contract` (tests): the behaviour every implementation must show (a JetStream log, the
//!   next backend, is to join it).

mod history;
mod published;
pub mod ring;

#[cfg(test)]
pub(crate) mod contract;

use std::pin::Pin;
use std::sync::Arc;

use futures::stream::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::model::state::Applied;
use crate::model::{Epoch, EventKind, Position, Snapshot, Source};
pub use published::Published;
pub use ring::{RingLimits, RingLog};

/// An event to append: already masked and normalised; the log gives it its position.
#[derive(Clone, Debug)]
pub struct Draft {
    pub kind: EventKind,
    pub data: Value,
    /// tastytrade's publication time (epoch ms), if it gave one.
    pub timestamp: Option<i64>,
    pub source: Source,
}

/// The event log of every account. Object-safe: the api holds an `Arc<dyn EventLog>`.
pub trait EventLog: Send + Sync + 'static {
    /// The history positions count in.
    fn epoch(&self) -> &Epoch;

    /// Registers an account's stream (idempotent). Reads of an account never registered
    /// see an empty one and keep nothing.
    fn open(&self, account: &str);

    /// Applies `draft` to the account's state and, if that changed the state (or the kind is
    /// one that is passed through), appends it as the account's next event, serialised once.
    /// Says what applying did. Appends of one account are ordered; the caller is its writer.
    fn append(&self, account: &str, draft: Draft) -> Applied;

    /// Where a subscriber starts, and the live events after that start, taken atomically
    /// with appending: nothing is missed or repeated between them. `from` is the
    /// subscriber's last position, if it has one.
    fn subscribe(&self, account: &str, from: Option<&Position>) -> Subscription;

    /// The account's state with the position it is exact at.
    fn snapshot(&self, account: &str) -> Snapshot;

    /// The account's latest position (cheaper than a snapshot).
    fn head(&self, account: &str) -> Position;
}

/// A subscription: where to start, then the live events.
pub struct Subscription {
    pub start: Start,
    pub events: Events,
}

/// Where a new subscriber starts.
pub enum Start {
    /// A fresh snapshot (no resume position given).
    Snapshot(Snapshot),
    /// Exactly the events after the resume position `after`, all still in the history.
    Replay {
        after: u64,
        events: Vec<Arc<Published>>,
    },
    /// The resume position cannot be served (another epoch, left the history, or from the
    /// future): a fresh snapshot, to replace whatever the subscriber holds.
    Reset(Snapshot),
}

/// Why a subscription's live events ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The subscriber fell further behind than the log holds for it; `missed` events are
    /// gone for it. It resumes from its last position (a replay or a reset).
    FellBehind { missed: u64 },
    /// The log is gone (shutdown).
    Closed,
}

pub type EventStream = Pin<Box<dyn Stream<Item = Result<Arc<Published>, Ended>> + Send>>;

/// The live events of one subscription. The ring's receiver is read directly (no box, no
/// task node per event: the fan-out bench `fanout` measures this path); other backends
/// hand over a stream.
pub struct Events(Inner);

enum Inner {
    Ring(broadcast::Receiver<Arc<Published>>),
    Stream(EventStream),
}

impl Events {
    pub(crate) fn ring(receiver: broadcast::Receiver<Arc<Published>>) -> Self {
        Self(Inner::Ring(receiver))
    }

    /// Live events from any stream (for backends other than the ring, and for tests).
    pub fn from_stream(stream: EventStream) -> Self {
        Self(Inner::Stream(stream))
    }

    /// The next event if one is ready now, without waiting (`None`: nothing yet).
    pub fn try_next(&mut self) -> Option<Result<Arc<Published>, Ended>> {
        use futures::FutureExt;
        use tokio::sync::broadcast::error::TryRecvError;
        match &mut self.0 {
            Inner::Ring(receiver) => match receiver.try_recv() {
                Ok(event) => Some(Ok(event)),
                Err(TryRecvError::Empty) => None,
                Err(TryRecvError::Lagged(missed)) => Some(Err(Ended::FellBehind { missed })),
                Err(TryRecvError::Closed) => Some(Err(Ended::Closed)),
            },
            Inner::Stream(stream) => stream
                .next()
                .now_or_never()
                .map(|item| item.unwrap_or(Err(Ended::Closed))),
        }
    }

    /// The next event, or why there are no more. Cancel-safe.
    pub async fn next(&mut self) -> Result<Arc<Published>, Ended> {
        match &mut self.0 {
            Inner::Ring(receiver) => receiver.recv().await.map_err(|error| match error {
                RecvError::Lagged(missed) => Ended::FellBehind { missed },
                RecvError::Closed => Ended::Closed,
            }),
            Inner::Stream(stream) => stream.next().await.unwrap_or(Err(Ended::Closed)),
        }
    }

    /// As a stream, to merge several subscriptions into one feed.
    pub fn into_stream(self) -> EventStream {
        match self.0 {
            Inner::Ring(receiver) => Box::pin(BroadcastStream::new(receiver).map(|item| {
                item.map_err(
                    |BroadcastStreamRecvError::Lagged(missed)| Ended::FellBehind { missed },
                )
            })),
            Inner::Stream(stream) => stream,
        }
    }
}
