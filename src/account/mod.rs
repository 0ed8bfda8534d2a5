//! Accounts: what may be shown about each (`AccountInfo`), its upstream status, and its
//! ingest: every update from upstream is masked once, normalised and appended to the event
//! log, which applies it to the account's state and publishes it if it changed something.
//! A REST baseline is diffed against the log's snapshot and appended as `resync` events.

pub mod registry;

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::Utc;
use serde_json::Value;

use crate::log::{Draft, EventLog};
use crate::mask::Masker;
use crate::model::state::{self, AccountState, Applied};
use crate::model::{EventKind, Snapshot, Source, UpstreamStatus};
pub use registry::Registry;

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

/// One account: its public face, its upstream status, and its writer's side of the log.
pub struct Account {
    pub info: AccountInfo,
    masker: Arc<Masker>,
    log: Arc<dyn EventLog>,
    status: Mutex<UpstreamStatus>,
}

impl Account {
    pub fn new(info: AccountInfo, masker: Arc<Masker>, log: Arc<dyn EventLog>) -> Self {
        crate::metrics::zero_account(&info.public_id);
        log.open(&info.public_id);
        Self {
            info,
            masker,
            log,
            status: Mutex::new(UpstreamStatus::default()),
        }
    }

    fn lock_status(&self) -> MutexGuard<'_, UpstreamStatus> {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn append(
        &self,
        kind: EventKind,
        data: Value,
        timestamp: Option<i64>,
        source: Source,
    ) -> Applied {
        let draft = Draft {
            kind,
            data,
            timestamp,
            source,
        };
        self.log.append(&self.info.public_id, draft)
    }

    /// Applies one upstream notification; returns what it did. The kind of an unknown type
    /// is upstream text like the data, so it is masked too.
    pub fn ingest(
        &self,
        kind: EventKind,
        mut data: Value,
        timestamp: Option<i64>,
        source: Source,
    ) -> Applied {
        let kind = match kind {
            EventKind::Other(name) => EventKind::Other(self.masker.mask_text(&name)),
            known => known,
        };
        self.masker.mask_value(&mut data);
        state::normalize(&kind, &mut data);
        if source == Source::Stream {
            self.lock_status().last_event_at = Some(Utc::now());
        }
        self.append(kind, data, timestamp, source)
    }

    /// Diffs a REST baseline against the log's state and appends the differences as
    /// `resync` events; returns how many there were. The account's writer calls this (it
    /// is the only one appending, so the state cannot move between the diff and the appends).
    pub fn resync(&self, mut baseline: AccountState) -> usize {
        self.mask_state(&mut baseline);
        for order in baseline.orders.values_mut() {
            state::normalize(&EventKind::Order, order);
        }
        let current = self.log.writer_state(&self.info.public_id);
        let mut published = 0;
        for (kind, data) in current.diff(&baseline) {
            if self.append(kind, data, None, Source::Resync) == Applied::Changed {
                published += 1;
            }
        }
        self.log.baseline_applied(&self.info.public_id);
        self.lock_status().resync_events += published as u64;
        if published > 0 {
            crate::metrics::resync_events(&self.info.public_id, published);
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

    /// The current state, exact at its position.
    pub fn snapshot(&self) -> Snapshot {
        self.log.snapshot(&self.info.public_id)
    }

    /// The latest seq published.
    pub fn seq(&self) -> u64 {
        self.log.head(&self.info.public_id).seq
    }

    /// The upstream status: this process's own, or, in a cluster, the one the holder of the
    /// account's socket published last (with the holder's node).
    pub fn status(&self) -> UpstreamStatus {
        let local = self.lock_status().clone();
        match self.log.holder(&self.info.public_id) {
            None => local,
            Some(holder) if holder.here => UpstreamStatus {
                node: holder.node,
                ..local
            },
            Some(holder) => {
                let mut status = holder.status.unwrap_or_else(|| UpstreamStatus {
                    state: crate::model::LinkState::Connecting,
                    ..UpstreamStatus::default()
                });
                status.node = holder.node;
                status
            }
        }
    }

    /// Updates the upstream status; error texts are masked on the way in. A change of link
    /// state is also published as a `status` event (source `gateway`), so stream consumers
    /// see when the account is live, resyncing or backing off.
    pub fn update_status(&self, change: impl FnOnce(&mut UpstreamStatus)) {
        let mut status = self.lock_status();
        let before = status.clone();
        change(&mut status);
        let id = &self.info.public_id;
        if status.reconnects > before.reconnects {
            crate::metrics::reconnect(id);
        }
        for (reason, now, then) in [
            ("frame", status.skipped_frames, before.skipped_frames),
            ("invalid", status.invalid_events, before.invalid_events),
            ("unknown_type", status.unknown_events, before.unknown_events),
        ] {
            if now > then {
                crate::metrics::upstream_skipped(id, reason, now - then);
            }
        }
        if let Some(error) = status.last_error.take() {
            status.last_error = Some(self.masker.mask_diagnostic(&error));
        }
        if status.state != before.state {
            crate::metrics::upstream_state(id, status.state);
            let mut shown = status.clone();
            shown.node = self.log.holder(id).and_then(|holder| holder.node);
            let data = serde_json::to_value(&shown).unwrap_or_default();
            // Appended under the status lock: status events keep the order of the changes.
            self.append(EventKind::Status, data, None, Source::Gateway);
        }
    }
}
