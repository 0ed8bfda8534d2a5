//! The in-process event log, the embedded default: per account, the state fold, a sequence
//! counter, a bounded history of published events and a broadcast bus, all under one lock,
//! so a subscriber's start (snapshot or replay) and its live events meet without a gap.
//! Its epoch is the process's start: a restart is a new history.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::history::{Budget, History};
use super::{Draft, EventLog, Events, Ordered, Published, Since, Start, Subscription};
use crate::model::state::{AccountState, Applied};
use crate::model::{Envelope, Epoch, EventKind, Position, Snapshot};

/// Sizes of each account's history and live bus.
#[derive(Clone, Copy, Debug)]
pub struct RingLimits {
    pub ring_events: usize,
    pub ring_max_age: Duration,
    /// Bytes of events kept for resuming, per account.
    pub ring_max_bytes: usize,
    /// Bytes of events kept for resuming, every account together.
    pub ring_budget_bytes: usize,
    /// Events a live subscriber may fall behind before it is cut as a slow consumer.
    pub bus_capacity: usize,
}

impl Default for RingLimits {
    fn default() -> Self {
        Self {
            ring_events: 10_000,
            ring_max_age: Duration::from_secs(3600),
            ring_max_bytes: 16 << 20,
            ring_budget_bytes: 1 << 30,
            bus_capacity: 4_096,
        }
    }
}

/// The ring log of every account.
pub struct RingLog {
    epoch: Epoch,
    limits: RingLimits,
    /// The process's byte budget for histories, split over the registered accounts.
    budget: Arc<Budget>,
    accounts: RwLock<HashMap<Arc<str>, Arc<Stream>>>,
    /// Every account's events in one order, for streams over many accounts.
    order: Mutex<Order>,
}

/// The whole log's order: its latest place and the bus that carries every event in it.
struct Order {
    last: u64,
    bus: broadcast::Sender<Arc<Published>>,
}

/// How many events a stream over many accounts may fall behind the whole log before it is
/// cut as a slow consumer: this many times an account's bus (`--subscriber-queue`), as it
/// reads every account's.
const ORDER_BUS_FACTOR: usize = 16;

/// The ordered bus's slots (preallocated), at most 2^20 (~40 MB) whatever the setting.
fn order_bus_capacity(bus_capacity: usize) -> usize {
    (bus_capacity.max(16) * ORDER_BUS_FACTOR).min(1 << 20)
}

/// One account's stream.
struct Stream {
    account: Arc<str>,
    inner: Mutex<Inner>,
    bus: broadcast::Sender<Arc<Published>>,
}

struct Inner {
    state: AccountState,
    /// The seq of the account's latest event, and its place in the whole log's order.
    seq: u64,
    order: u64,
    history: History,
    /// A replica's place in its journal: the seq of the account's latest message (events
    /// and checkpoints), and whether `state` is exact (it follows every message from the
    /// empty state or from a checkpoint). The ring is its own journal: always exact.
    journal: u64,
    exact: bool,
    /// The latest `status` event's data a replica applied (the holder's upstream status).
    status: Option<serde_json::Value>,
}

/// One message of a journal, as a replica applies it (see [`RingLog::replicate`]).
pub enum Replicated {
    /// An event the leader published at `seq`, after the account's message `prev_message`
    /// and its event `prev_event`.
    Event {
        seq: u64,
        prev_message: u64,
        prev_event: u64,
        draft: Draft,
        received_at: DateTime<Utc>,
    },
    /// The leader's whole state of the account, exact at `seq`.
    Checkpoint {
        seq: u64,
        prev_message: u64,
        state: AccountState,
    },
}

/// Journal messages a replica missed: the account's last one it holds is `after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub after: u64,
}

/// A replica's copy of one account, as a new leader takes it over.
pub struct Held {
    pub state: AccountState,
    /// The account's latest message and event.
    pub journal: u64,
    pub seq: u64,
    pub exact: bool,
}

impl RingLog {
    /// A log with a new epoch (now).
    pub fn new(limits: RingLimits) -> Self {
        Self::with_epoch(Epoch::now(), limits)
    }

    pub fn with_epoch(epoch: Epoch, limits: RingLimits) -> Self {
        Self {
            epoch,
            budget: Arc::new(Budget::new(limits.ring_budget_bytes)),
            limits,
            accounts: RwLock::new(HashMap::new()),
            order: Mutex::new(Order {
                last: 0,
                bus: broadcast::channel(order_bus_capacity(limits.bus_capacity)).0,
            }),
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
            .or_insert_with(|| {
                self.budget.register();
                Arc::new(Stream::new(
                    account.into(),
                    &self.limits,
                    self.budget.clone(),
                ))
            })
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
        self.registered(account).unwrap_or_else(|| {
            Arc::new(Stream::new(
                account.into(),
                &self.limits,
                self.budget.clone(),
            ))
        })
    }

    /// Applies one journal message to a replica of a registered account (others are not
    /// kept). A message that does not follow the account's previous one means the consumer
    /// missed messages: the gap is returned, nothing applied, so the caller reads again from
    /// it; with `accept_gap` (the messages are gone from the journal) the state becomes
    /// inexact until the next checkpoint and the history starts afresh (a resume from before
    /// gets a reset). The first message a replica sees of an account may follow messages
    /// retention removed: it starts the state inexact, not a gap.
    pub fn replicate(
        &self,
        account: &str,
        message: Replicated,
        accept_gap: bool,
    ) -> Result<(), Gap> {
        let Some(stream) = self.registered(account) else {
            return Ok(());
        };
        let mut inner = stream.lock();
        let (seq, prev_message) = match &message {
            Replicated::Checkpoint {
                seq, prev_message, ..
            }
            | Replicated::Event {
                seq, prev_message, ..
            } => (*seq, *prev_message),
        };
        if seq <= inner.journal {
            // Already applied (a consumer reading again after a gap or a restart).
            return Ok(());
        }
        if prev_message != inner.journal {
            if inner.journal > 0 && !accept_gap {
                return Err(Gap {
                    after: inner.journal,
                });
            }
            inner.exact = false;
        }
        match message {
            Replicated::Checkpoint { state, .. } => {
                inner.state = state;
                inner.exact = true;
                inner.journal = seq;
            }
            Replicated::Event {
                prev_event,
                draft,
                received_at,
                ..
            } => {
                if inner.exact {
                    inner.state.apply(&draft.kind, &draft.data);
                }
                if prev_event != inner.seq {
                    inner.history.clear();
                }
                if draft.kind == EventKind::Status {
                    inner.status = Some(draft.data.clone());
                }
                let event = publish(
                    &stream.account,
                    &self.position(seq),
                    prev_event,
                    &draft,
                    received_at,
                );
                // A journal's seqs are its order already, and the event before this one is
                // the journal's (not the replica's last: after a gap they differ).
                let place = Placed {
                    order: Some(seq),
                    prev_order: prev_event,
                };
                inner.push(&stream, &self.order, seq, place, event);
                crate::metrics::published(&stream.account, draft.kind.as_str());
            }
        }
        Ok(())
    }

    /// The data of the latest `status` event a replica applied for the account.
    pub fn last_status(&self, account: &str) -> Option<serde_json::Value> {
        self.registered(account)?.lock().status.clone()
    }

    /// The replica's copy of an account, for a leader taking it over.
    pub fn held(&self, account: &str) -> Held {
        let stream = self.read(account);
        let inner = stream.lock();
        Held {
            state: inner.state.clone(),
            journal: inner.journal,
            seq: inner.seq,
            exact: inner.exact,
        }
    }

    /// Where a subscriber of `account` starts from `since`, read under the account's lock.
    fn start_of(&self, account: &str, inner: &Inner, since: Since<'_>) -> Start {
        let snapshot = || Snapshot::of(account, &self.position(inner.seq), &inner.state);
        let replay = |after: u64, events| Start::Replay { after, events };
        match since {
            Since::Fresh => Start::Snapshot(snapshot()),
            Since::Event(from) if from.epoch == self.epoch => {
                match inner.history.since(from.seq, inner.seq) {
                    Some(events) => replay(from.seq, events),
                    None => Start::Reset(snapshot()),
                }
            }
            Since::Order(from) if from.epoch == self.epoch && from.seq <= self.order_last() => {
                match inner.history.since_order(from.seq, inner.order) {
                    // Resumes after the account's event just before the first one missed.
                    Some(events) => {
                        let after = events.first().map_or(inner.seq, |e| e.prev);
                        replay(after, events)
                    }
                    None => Start::Reset(snapshot()),
                }
            }
            Since::Event(_) | Since::Order(_) => Start::Reset(snapshot()),
        }
    }

    /// The latest place in the whole log's order.
    fn order_last(&self) -> u64 {
        self.order.lock().unwrap_or_else(|p| p.into_inner()).last
    }

    fn position(&self, seq: u64) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq,
        }
    }
}

impl Stream {
    fn new(account: Arc<str>, limits: &RingLimits, budget: Arc<Budget>) -> Self {
        let (bus, _) = broadcast::channel(limits.bus_capacity.max(16));
        let history = History::new(
            limits.ring_events,
            limits.ring_max_age,
            limits.ring_max_bytes,
            budget,
        );
        Self {
            account,
            inner: Mutex::new(Inner {
                state: AccountState::default(),
                seq: 0,
                order: 0,
                history,
                journal: 0,
                exact: true,
                status: None,
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

/// Where an event goes in the whole log's order: at `order` (a journal's seq) or next, after
/// the account's event at `prev_order`.
struct Placed {
    order: Option<u64>,
    prev_order: u64,
}

impl Inner {
    /// Keeps `event` (the account's latest, at `seq`), places it in the whole log's order
    /// and hands it to the live subscribers.
    fn push(
        &mut self,
        stream: &Stream,
        order: &Mutex<Order>,
        seq: u64,
        placed: Placed,
        event: Published,
    ) {
        let event = {
            // Placed and sent under the order's lock, so the ordered bus carries the order.
            let mut order = order
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let place = placed.order.unwrap_or(order.last + 1);
            order.last = order.last.max(place);
            let event = Arc::new(event.ordered(place, placed.prev_order));
            let _ = order.bus.send(event.clone());
            event
        };
        self.seq = seq;
        self.order = event.order;
        self.journal = self.journal.max(seq);
        self.history.push(event.clone());
        let _ = stream.bus.send(event);
    }
}

/// Serialises the envelope once into the event every subscriber shares.
fn publish(
    account: &Arc<str>,
    position: &Position,
    prev: u64,
    draft: &Draft,
    received_at: DateTime<Utc>,
) -> Published {
    let kind = draft.kind.as_str();
    let envelope = Envelope {
        id: position.to_string(),
        seq: position.seq,
        account,
        kind,
        source: draft.source,
        timestamp: draft.timestamp,
        received_at,
        data: &draft.data,
    };
    let bytes = serde_json::to_vec(&envelope).unwrap_or_default();
    Published::new(
        position,
        prev,
        account.clone(),
        kind.to_string(),
        bytes,
        draft.timestamp,
    )
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
            let (prev, seq) = (inner.seq, inner.seq + 1);
            let event = publish(
                &stream.account,
                &self.position(seq),
                prev,
                &draft,
                Utc::now(),
            );
            let place = Placed {
                order: None,
                prev_order: inner.order,
            };
            inner.push(&stream, &self.order, seq, place, event);
            crate::metrics::published(&stream.account, draft.kind.as_str());
        }
        applied
    }

    fn subscribe(&self, account: &str, from: Option<&Position>) -> Subscription {
        let stream = self.read(account);
        let inner = stream.lock();
        let events = Events::ring(stream.bus.subscribe());
        let since = from.map_or(Since::Fresh, Since::Event);
        let start = self.start_of(account, &inner, since);
        Subscription { start, events }
    }

    fn ordered(&self) -> Ordered {
        let order = self.order.lock().unwrap_or_else(|p| p.into_inner());
        Ordered {
            events: Events::ring(order.bus.subscribe()),
            at: order.last,
        }
    }

    fn start(&self, account: &str, since: Since<'_>) -> (Start, u64) {
        let stream = self.read(account);
        let inner = stream.lock();
        (self.start_of(account, &inner, since), inner.order)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Source;
    use serde_json::json;

    fn event(seq: u64, prev_message: u64, prev_event: u64, id: u64) -> Replicated {
        Replicated::Event {
            seq,
            prev_message,
            prev_event,
            draft: Draft {
                kind: EventKind::Order,
                data: json!({"id": id, "status": "Live"}),
                timestamp: None,
                source: Source::Stream,
            },
            received_at: Utc::now(),
        }
    }

    #[test]
    fn a_replica_reports_missed_messages_and_accepts_them_only_when_told() {
        let log = RingLog::with_epoch(Epoch::from_millis(1), RingLimits::default());
        log.open("main");
        // The first message seen may follow ones retention removed: inexact, not a gap.
        assert_eq!(log.replicate("main", event(10, 7, 7, 1), false), Ok(()));
        assert!(!log.held("main").exact);
        let checkpoint = Replicated::Checkpoint {
            seq: 12,
            prev_message: 10,
            state: AccountState::default(),
        };
        assert_eq!(log.replicate("main", checkpoint, false), Ok(()));
        assert!(log.held("main").exact);
        assert_eq!(log.replicate("main", event(14, 12, 10, 2), false), Ok(()));
        // Message 16 is missed: 17 says so, and is not applied.
        assert_eq!(
            log.replicate("main", event(17, 16, 16, 3), false),
            Err(Gap { after: 14 })
        );
        assert_eq!(log.head("main").seq, 14);
        assert_eq!(log.replicate("main", event(16, 14, 14, 4), false), Ok(()));
        assert_eq!(log.replicate("main", event(17, 16, 16, 3), false), Ok(()));
        assert_eq!(log.snapshot("main").orders.len(), 3);
        assert!(log.held("main").exact);
        // Gone for good: accepted, and the state is inexact until a checkpoint.
        assert_eq!(log.replicate("main", event(30, 25, 25, 5), true), Ok(()));
        assert!(!log.held("main").exact);
        assert_eq!(
            log.replicate("main", event(17, 16, 16, 3), false),
            Ok(()),
            "again: ignored"
        );
    }
}
