//! The event log: the seam between the accounts (which append) and the api (which reads
//! snapshots and subscribes). Every backend offers the same few operations: append an
//! account's next event (the log assigns its position), subscribe from an optional position
//! (a start, then live events until the subscriber falls too far behind), the snapshot with
//! the position it is exact at, and the epoch positions count in.
//!
//! - [`ring`]: the in-process ring + broadcast, the embedded default.
//! - [`jetstream`]: NATS JetStream (`--nats-url`): the journal every node appends to (fenced,
//!   one leader per account) and a node-local ring replica every node serves from.
//! - `contract` (tests): the behaviour every implementation must show.

mod history;
pub mod jetstream;
mod published;
pub mod ring;

#[cfg(test)]
pub(crate) mod contract;

use std::pin::Pin;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::{Stream, StreamExt};
use serde_json::Value;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::model::state::{AccountState, Applied};
use crate::model::{Epoch, EventKind, Position, Snapshot, Source, UpstreamStatus};
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

    /// The live events of every account in the whole log's order, from now, and the place
    /// in that order the log is at: what a stream over many accounts reads, so its id can
    /// be one place in that order instead of a position per account (`api::feed`).
    fn ordered(&self) -> Ordered;

    /// Where one account of a stream over many starts (as [`EventLog::subscribe`], but its
    /// live events come from [`EventLog::ordered`], taken before), with the order of the
    /// account's latest event.
    fn start(&self, account: &str, since: Since<'_>) -> (Start, u64);

    /// The account's state with the position it is exact at.
    fn snapshot(&self, account: &str) -> Snapshot;

    /// The account's latest position (cheaper than a snapshot).
    fn head(&self, account: &str) -> Position;

    /// Waits, boundedly, until this process's copy of the log holds `position` when it
    /// could be just behind it (a replica behind the node that handed the position out), so
    /// a resume is not answered with a reset for a position that is about to arrive. The
    /// ring is always current.
    fn catch_up<'a>(&'a self, _account: &'a str, _position: &'a Position) -> BoxFuture<'a, ()> {
        Box::pin(std::future::ready(()))
    }

    /// The state the account's writer appends onto (what a REST baseline is diffed against):
    /// the snapshot's, unless appends are still on their way to a journal.
    fn writer_state(&self, account: &str) -> AccountState {
        AccountState::from_snapshot(self.snapshot(account))
    }

    /// The writer finished appending a REST baseline's differences (a journal may now
    /// checkpoint a state it did not know before).
    fn baseline_applied(&self, _account: &str) {}

    /// Who holds the account's upstream socket when another process may (a cluster).
    fn holder(&self, _account: &str) -> Option<Holder> {
        None
    }

    /// Why this process cannot serve from the log now (its journal unreachable, its replica
    /// not caught up), if it cannot.
    fn trouble(&self) -> Option<String> {
        None
    }
}

/// The holder of an account's upstream socket, as a cluster node sees it.
#[derive(Clone, Debug)]
pub struct Holder {
    /// The node holding it, if one does.
    pub node: Option<String>,
    /// Whether that node is this one.
    pub here: bool,
    /// The status the holder published last.
    pub status: Option<UpstreamStatus>,
}

/// A subscription: where to start, then the live events.
pub struct Subscription {
    pub start: Start,
    pub events: Events,
}

/// The live events of every account in the log's order, and the place `at` in that order
/// they follow.
pub struct Ordered {
    pub events: Events,
    pub at: u64,
}

/// Where one account of a stream over many resumes from.
#[derive(Clone, Copy, Debug)]
pub enum Since<'a> {
    /// Nowhere: a fresh snapshot.
    Fresh,
    /// After the account's event at this position.
    Event(&'a Position),
    /// After this place in the whole log's order (its `seq` counts that order).
    Order(&'a Position),
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
