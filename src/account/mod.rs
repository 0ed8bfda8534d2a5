//! Accounts: per-account state + journal + broadcast bus, between the upstream (which feeds
//! updates in) and the api (which reads snapshots and subscribes). Every update is masked
//! once, applied in order, and, if it changed something, sequenced, serialised once and
//! published. Snapshot and subscription are taken under the same lock as publishing, so a
//! subscriber gets the snapshot at `seq = N` and then exactly the events after N.

pub mod journal;
pub mod registry;
pub mod state;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;
use utoipa::ToSchema;

use crate::mask::Masker;
use crate::model::{Envelope, Source, UpstreamStatus};
use journal::Journal;
pub use journal::Published;
pub use registry::Registry;
use state::{AccountState, Applied};

/// What may be shown about an account: never its full number.
#[derive(Clone, Debug)]
pub struct AccountInfo {
    /// The opaque id used in URLs and events (an alias, else derived from the nickname).
    pub public_id: String,
    /// `***` + last four.
    pub masked_number: String,
    pub nickname: Option<String>,
    pub account_type: Option<String>,
}

/// Sizes of the journal and of the live bus.
#[derive(Clone, Copy, Debug)]
pub struct JournalLimits {
    pub ring_events: usize,
    pub ring_max_age: std::time::Duration,
    /// Bytes of events kept for resuming.
    pub ring_max_bytes: usize,
    /// Events a live subscriber may fall behind before it is cut as a slow consumer.
    pub bus_capacity: usize,
}

impl Default for JournalLimits {
    fn default() -> Self {
        Self {
            ring_events: 10_000,
            ring_max_age: std::time::Duration::from_secs(3600),
            ring_max_bytes: 16 << 20,
            bus_capacity: 4_096,
        }
    }
}

/// A point-in-time copy of an account's state, exact at `seq`: `snapshot(seq = N)` plus
/// every event with `seq > N` equals the current state. tastytrade objects are passed
/// through as tastytrade sent them (kebab-case keys, decimal strings, unknown fields), masked.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Snapshot {
    /// The account's public id.
    pub account: String,
    /// Changes whenever the journal starts afresh (each gateway start).
    pub epoch: String,
    /// The sequence number this snapshot is exact at.
    pub seq: u64,
    /// When the snapshot was taken.
    pub as_of: DateTime<Utc>,
    /// tastytrade `AccountBalance`.
    #[schema(value_type = Option<Object>)]
    pub balance: Option<Value>,
    /// tastytrade `CurrentPosition` objects, by symbol.
    #[schema(value_type = Vec<Object>)]
    pub positions: Vec<Value>,
    /// Today's orders as `/orders/live` gives them, terminal ones included, by id.
    #[schema(value_type = Vec<Object>)]
    pub orders: Vec<Value>,
    /// tastytrade `ComplexOrder` objects, by id.
    #[schema(value_type = Vec<Object>)]
    pub complex_orders: Vec<Value>,
    /// tastytrade `TradingStatus`.
    #[schema(value_type = Option<Object>)]
    pub trading_status: Option<Value>,
}

/// Where a new subscriber starts.
pub enum Start {
    /// A fresh snapshot (no resume position given).
    Snapshot(Snapshot),
    /// The events missed since the resume position, all still in the journal.
    Replay(Vec<Arc<Published>>),
    /// The resume position cannot be served (other epoch, or left the ring): a fresh snapshot.
    Reset(Snapshot),
}

struct Inner {
    state: AccountState,
    journal: Journal,
    seq: u64,
    status: UpstreamStatus,
}

/// One account: its state, journal, bus and upstream status.
pub struct Account {
    pub info: AccountInfo,
    /// The public id, shared by every event published for this account.
    public_id: Arc<str>,
    epoch: Arc<str>,
    masker: Arc<Masker>,
    inner: Mutex<Inner>,
    bus: broadcast::Sender<Arc<Published>>,
}

impl Account {
    pub fn new(
        info: AccountInfo,
        epoch: Arc<str>,
        masker: Arc<Masker>,
        limits: JournalLimits,
    ) -> Self {
        let (bus, _) = broadcast::channel(limits.bus_capacity.max(16));
        crate::metrics::zero_account(&info.public_id);
        Self {
            public_id: info.public_id.as_str().into(),
            info,
            epoch,
            masker,
            inner: Mutex::new(Inner {
                state: AccountState::default(),
                journal: Journal::new(
                    limits.ring_events,
                    limits.ring_max_age,
                    limits.ring_max_bytes,
                ),
                seq: 0,
                status: UpstreamStatus::default(),
            }),
            bus,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// `text` with every configured account number masked (for upstream texts that are not
    /// part of an object, such as an event's type).
    pub fn mask_text(&self, text: &str) -> String {
        self.masker.mask_text(text)
    }

    /// `text` (a log line, an error or status text) with every account number masked.
    pub fn mask_diagnostic(&self, text: &str) -> String {
        self.masker.mask_diagnostic(text)
    }

    /// Applies one upstream notification; returns what it did.
    pub fn ingest(
        &self,
        kind: &str,
        mut data: Value,
        timestamp: Option<i64>,
        source: Source,
    ) -> Applied {
        self.masker.mask_value(&mut data);
        state::normalize(kind, &mut data);
        let mut inner = self.lock();
        if source == Source::Stream {
            inner.status.last_event_at = Some(Utc::now());
        }
        let applied = inner.state.apply(kind, &data);
        if matches!(applied, Applied::Changed | Applied::PassThrough) {
            self.publish(&mut inner, kind, &data, timestamp, source);
        }
        applied
    }

    /// Diffs a REST baseline against the state and publishes the differences as `resync`
    /// events; returns how many there were.
    pub fn resync(&self, mut baseline: AccountState) -> usize {
        self.mask_state(&mut baseline);
        for order in baseline.orders.values_mut() {
            state::normalize("Order", order);
        }
        let mut inner = self.lock();
        let events = inner.state.diff(&baseline);
        let mut published = 0;
        for (kind, data) in events {
            if inner.state.apply(&kind, &data) == Applied::Changed {
                self.publish(&mut inner, &kind, &data, None, Source::Resync);
                published += 1;
            }
        }
        inner.status.resync_events += published as u64;
        if published > 0 {
            crate::metrics::resync_events(&self.public_id, published);
        }
        published
    }

    fn mask_state(&self, state: &mut AccountState) {
        let masker = &self.masker;
        for value in state
            .balance
            .iter_mut()
            .chain(state.trading_status.iter_mut())
            .chain(state.positions.values_mut())
            .chain(state.orders.values_mut())
            .chain(state.complex_orders.values_mut())
        {
            masker.mask_value(value);
        }
    }

    /// Sequences, serialises once, journals and broadcasts one event. Called under the lock.
    fn publish(
        &self,
        inner: &mut Inner,
        kind: &str,
        data: &Value,
        timestamp: Option<i64>,
        source: Source,
    ) {
        inner.seq += 1;
        let seq = inner.seq;
        let envelope = Envelope {
            id: format!("{}-{seq}", self.epoch),
            seq,
            account: &self.info.public_id,
            kind,
            source,
            timestamp,
            received_at: Utc::now(),
            data,
        };
        let bytes = serde_json::to_vec(&envelope).unwrap_or_default();
        let event = Arc::new(Published::new(
            &self.epoch,
            self.public_id.clone(),
            seq,
            kind.to_string(),
            bytes,
            timestamp,
        ));
        crate::metrics::published(&self.public_id, kind);
        inner.journal.push(event.clone());
        let _ = self.bus.send(event);
    }

    fn snapshot_of(&self, inner: &Inner) -> Snapshot {
        let state = &inner.state;
        Snapshot {
            account: self.info.public_id.clone(),
            epoch: self.epoch.to_string(),
            seq: inner.seq,
            as_of: Utc::now(),
            balance: state.balance.clone(),
            positions: state.positions.values().cloned().collect(),
            orders: state.orders.values().cloned().collect(),
            complex_orders: state.complex_orders.values().cloned().collect(),
            trading_status: state.trading_status.clone(),
        }
    }

    /// The current state, exact at its `seq`.
    pub fn snapshot(&self) -> Snapshot {
        let inner = self.lock();
        self.snapshot_of(&inner)
    }

    /// The latest seq published.
    pub fn seq(&self) -> u64 {
        self.lock().seq
    }

    /// Registers a subscriber and tells it where to start, atomically with publishing: the
    /// receiver gets exactly the events after the snapshot or replay.
    /// `resume` is the client's last `(epoch, seq)`.
    pub fn subscribe(
        &self,
        resume: Option<(&str, u64)>,
    ) -> (Start, broadcast::Receiver<Arc<Published>>) {
        let inner = self.lock();
        let receiver = self.bus.subscribe();
        let start = match resume {
            None => Start::Snapshot(self.snapshot_of(&inner)),
            Some((epoch, seq)) if epoch == &*self.epoch => {
                match inner.journal.since(seq, inner.seq) {
                    Some(events) => Start::Replay(events),
                    None => Start::Reset(self.snapshot_of(&inner)),
                }
            }
            Some(_) => Start::Reset(self.snapshot_of(&inner)),
        };
        (start, receiver)
    }

    pub fn status(&self) -> UpstreamStatus {
        self.lock().status.clone()
    }

    /// Updates the upstream status; error texts are masked on the way in. A change of link
    /// state is also published as a `status` event (source `gateway`), so stream consumers
    /// see when the account is live, resyncing or backing off.
    pub fn update_status(&self, change: impl FnOnce(&mut UpstreamStatus)) {
        let mut inner = self.lock();
        let before = inner.status.clone();
        change(&mut inner.status);
        let after = &inner.status;
        let id = &self.public_id;
        if after.reconnects > before.reconnects {
            crate::metrics::reconnect(id);
        }
        for (reason, now, then) in [
            ("frame", after.skipped_frames, before.skipped_frames),
            ("invalid", after.invalid_events, before.invalid_events),
            ("unknown_type", after.unknown_events, before.unknown_events),
        ] {
            if now > then {
                crate::metrics::upstream_skipped(id, reason, now - then);
            }
        }
        if let Some(error) = inner.status.last_error.take() {
            inner.status.last_error = Some(self.masker.mask_diagnostic(&error));
        }
        if inner.status.state != before.state {
            crate::metrics::upstream_state(id, inner.status.state);
            let data = serde_json::to_value(&inner.status).unwrap_or_default();
            self.publish(&mut inner, "status", &data, None, Source::Gateway);
        }
    }
}
