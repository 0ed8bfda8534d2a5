//! The in-process event log, the embedded default: per account, the state fold, a sequence
//! counter, a bounded history of published events and a broadcast bus, all under one lock,
//! so a subscriber's start (snapshot or replay) and its live events meet without a gap.
//! Its epoch is the process's start: a restart is a new history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::broadcast;

use super::history::History;
use super::{Draft, EventLog, Events, Published, Start, Subscription};
use crate::model::state::{AccountState, Applied};
use crate::model::{Envelope, Epoch, Position, Snapshot};

/// Sizes of each account's history and live bus.
#[derive(Clone, Copy, Debug)]
pub struct RingLimits {
    pub ring_events: usize,
    pub ring_max_age: Duration,
    /// Bytes of events kept for resuming.
    pub ring_max_bytes: usize,
    /// Events a live subscriber may fall behind before it is cut as a slow consumer.
    pub bus_capacity: usize,
}

impl Default for RingLimits {
    fn default() -> Self {
        Self {
            ring_events: 10_000,
            ring_max_age: Duration::from_secs(3600),
            ring_max_bytes: 16 << 20,
            bus_capacity: 4_096,
        }
    }
}

/// The ring log of every account.
pub struct RingLog {
    epoch: Epoch,
    limits: RingLimits,
    accounts: RwLock<HashMap<Arc<str>, Arc<Stream>>>,
}

/// One account's stream.
struct Stream {
    account: Arc<str>,
    inner: Mutex<Inner>,
    bus: broadcast::Sender<Arc<Published>>,
}

struct Inner {
    state: AccountState,
    seq: u64,
    history: History,
}

impl RingLog {
    /// A log with a new epoch (now).
    pub fn new(limits: RingLimits) -> Self {
        Self::with_epoch(Epoch::now(), limits)
    }

    pub fn with_epoch(epoch: Epoch, limits: RingLimits) -> Self {
        Self {
            epoch,
            limits,
            accounts: RwLock::new(HashMap::new()),
        }
    }

    /// The account's stream, registered on first append.
    fn stream(&self, account: &str) -> Arc<Stream> {
        if let Some(stream) = self.registered(account) {
            return stream;
        }
        let mut accounts = self
            .accounts
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        accounts
            .entry(account.into())
            .or_insert_with(|| Arc::new(Stream::new(account.into(), &self.limits)))
            .clone()
    }

    fn registered(&self, account: &str) -> Option<Arc<Stream>> {
        self.accounts
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(account)
            .cloned()
    }

    /// The account's stream for a read: an empty one, kept nowhere, if it was never
    /// registered (so reads of unknown ids cannot grow the log).
    fn read(&self, account: &str) -> Arc<Stream> {
        self.registered(account)
            .unwrap_or_else(|| Arc::new(Stream::new(account.into(), &self.limits)))
    }

    fn position(&self, seq: u64) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq,
        }
    }
}

impl Stream {
    fn new(account: Arc<str>, limits: &RingLimits) -> Self {
        let (bus, _) = broadcast::channel(limits.bus_capacity.max(16));
        let history = History::new(
            limits.ring_events,
            limits.ring_max_age,
            limits.ring_max_bytes,
        );
        Self {
            account,
            inner: Mutex::new(Inner {
                state: AccountState::default(),
                seq: 0,
                history,
            }),
            bus,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Serialises the envelope once into the event every subscriber shares.
fn publish(account: &Arc<str>, position: &Position, draft: &Draft) -> Arc<Published> {
    let kind = draft.kind.as_str();
    let envelope = Envelope {
        id: position.to_string(),
        seq: position.seq,
        account,
        kind,
        source: draft.source,
        timestamp: draft.timestamp,
        received_at: Utc::now(),
        data: &draft.data,
    };
    let bytes = serde_json::to_vec(&envelope).unwrap_or_default();
    Arc::new(Published::new(
        position,
        account.clone(),
        kind.to_string(),
        bytes,
        draft.timestamp,
    ))
}

impl EventLog for RingLog {
    fn epoch(&self) -> &Epoch {
        &self.epoch
    }

    fn open(&self, account: &str) {
        self.stream(account);
    }

    fn append(&self, account: &str, draft: Draft) -> Applied {
        let stream = self.stream(account);
        let mut inner = stream.lock();
        let applied = inner.state.apply(&draft.kind, &draft.data);
        if matches!(applied, Applied::Changed | Applied::PassThrough) {
            inner.seq += 1;
            let event = publish(&stream.account, &self.position(inner.seq), &draft);
            crate::metrics::published(&stream.account, draft.kind.as_str());
            inner.history.push(event.clone());
            let _ = stream.bus.send(event);
        }
        applied
    }

    fn subscribe(&self, account: &str, from: Option<&Position>) -> Subscription {
        let stream = self.read(account);
        let inner = stream.lock();
        let events = Events::ring(stream.bus.subscribe());
        let snapshot = || Snapshot::of(account, &self.position(inner.seq), &inner.state);
        let start = match from {
            None => Start::Snapshot(snapshot()),
            Some(from) if from.epoch == self.epoch => {
                match inner.history.since(from.seq, inner.seq) {
                    Some(events) => Start::Replay {
                        after: from.seq,
                        events,
                    },
                    None => Start::Reset(snapshot()),
                }
            }
            Some(_) => Start::Reset(snapshot()),
        };
        Subscription { start, events }
    }

    fn snapshot(&self, account: &str) -> Snapshot {
        let stream = self.read(account);
        let inner = stream.lock();
        Snapshot::of(account, &self.position(inner.seq), &inner.state)
    }

    fn head(&self, account: &str) -> Position {
        self.position(self.read(account).lock().seq)
    }
}
