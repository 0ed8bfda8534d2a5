//! The event log on NATS JetStream (`--nats-url`): every node serves from a node-local ring
//! replica of the journal (`replica`), and the node holding an account's lease leads it:
//! it applies each draft to its own copy of the state and queues what changed for its
//! publisher (`publisher`), which appends it to the journal fenced on the account's last
//! message. Events reach subscribers on every node, this one included, through the replica,
//! with the journal's seqs: ids are `<epoch>-<seq>`, `epoch` the stream's creation, so an id
//! taken on one node resumes on any other and after any restart.

mod publisher;
mod replica;
mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::{Draft, EventLog, Holder, Ordered, RingLimits, RingLog, Since, Start, Subscription};
use crate::cluster::Cluster;
use crate::cluster::lease::{LeaseEnd, LeaseGuard, Leases};
use crate::model::state::{AccountState, Applied};
use crate::model::{Epoch, Position, Snapshot, UpstreamStatus};
use publisher::{Chain, Publisher};
pub use replica::Progress;
use wire::Outgoing;

/// Messages a leader may have queued for the journal before it fences itself (NATS has
/// been unreachable too long; the next leader's REST resync covers what is dropped).
const QUEUE_LIMIT: usize = 65_536;
/// How long a resume waits at most for this node's replica to reach a position the journal
/// holds (another node gave it out): longer than a NATS leader election (4-9 s).
const CATCH_UP_LIMIT: Duration = Duration::from_secs(30);
/// How often a waiting resume checks the replica, and asks the journal.
const CATCH_UP_STEP: Duration = Duration::from_millis(250);

/// The JetStream event log of one node.
pub struct JetStreamLog {
    cluster: Cluster,
    replica: Arc<RingLog>,
    progress: watch::Receiver<Progress>,
    progress_tx: watch::Sender<Progress>,
    writers: RwLock<HashMap<String, Arc<Writer>>>,
    leases: OnceLock<Arc<Leases>>,
    /// A checkpoint every this many events (a quarter of the history kept per account, so
    /// the history always holds one to rebuild the state from).
    checkpoint_every: u64,
    /// ... and at least this often (a quarter of the history's age).
    checkpoint_period: Duration,
}

/// A led account: its state as appended (ahead of the replica by what is in flight) and
/// the queue to its publisher.
struct Writer {
    inner: Mutex<WriterInner>,
    queue: mpsc::Sender<Outgoing>,
    fencer: crate::cluster::lease::Fencer,
    /// Messages queued and not yet stored (a hand-over waits for none).
    pending: watch::Sender<usize>,
    publisher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

struct WriterInner {
    state: AccountState,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    /// Led from a replica whose state was not exact: the first checkpoint waits for the
    /// REST baseline (a checkpoint of a guessed state would be taken as exact everywhere).
    checkpoint_after_baseline: bool,
}

impl Writer {
    fn lock(&self) -> MutexGuard<'_, WriterInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message (under the writer's lock, so messages keep the order of the state
    /// changes); a full queue fences the lease.
    fn queue(&self, message: Outgoing) {
        self.pending.send_modify(|n| *n += 1);
        if self.queue.try_send(message).is_err() {
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
            tracing::warn!("journal queue full: NATS has been unreachable too long; stepping down");
            self.fencer.fence(LeaseEnd::Fenced);
        }
    }
}

impl JetStreamLog {
    /// A node's log over `cluster`, counting in the stream's epoch. Accounts are to be
    /// [`EventLog::open`]ed before [`JetStreamLog::start`] feeds the replica.
    pub async fn new(cluster: Cluster, limits: RingLimits) -> Result<Self, String> {
        let epoch = cluster.epoch_millis().await.map_err(|e| e.to_string())?;
        let info = cluster
            .stream
            .get_info()
            .await
            .map_err(|e| format!("stream info: {e}"))?;
        let (progress_tx, progress) = watch::channel(Progress {
            applied: 0,
            // An empty stream: current at once (the consumer says so for one with messages).
            start_target: if info.state.messages == 0 {
                0
            } else {
                info.state.last_sequence
            },
            trouble: None,
        });
        let history_events = cluster.settings.history_events.max(4) as u64;
        let checkpoint_period = cluster.settings.history_age / 4;
        Ok(Self {
            replica: Arc::new(RingLog::with_epoch(Epoch::from_millis(epoch), limits)),
            cluster,
            progress,
            progress_tx,
            writers: RwLock::new(HashMap::new()),
            leases: OnceLock::new(),
            checkpoint_every: history_events / 4,
            checkpoint_period,
        })
    }

    /// Starts the replica's consumer (after every account is opened).
    pub fn start(&self, shutdown: watch::Receiver<bool>) {
        tokio::spawn(replica::run(
            self.cluster.clone(),
            self.replica.clone(),
            self.progress_tx.clone(),
            shutdown,
        ));
    }

    /// The node's leases (for `upstream.node`), once they run.
    pub fn set_leases(&self, leases: Arc<Leases>) {
        let _ = self.leases.set(leases);
    }

    fn writer(&self, account: &str) -> Option<Arc<Writer>> {
        self.writers
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(account)
            .cloned()
    }

    /// Leads `accounts` for the lease's term: waits until the replica holds the journal's
    /// last message of each (so the state appended onto is the journal's), then appends a
    /// checkpoint and accepts appends.
    pub async fn lead(&self, accounts: &[&str], guard: &LeaseGuard) -> Result<(), String> {
        for account in accounts {
            let subject = self.cluster.names.subject(account);
            let last = publisher::last_message(&self.cluster, &subject).await?;
            let mut progress = self.progress.clone();
            let caught_up = progress.wait_for(|p| p.applied >= last);
            tokio::time::timeout(Duration::from_secs(10), caught_up)
                .await
                .map_err(|_| format!("the replica did not reach the journal's message {last}"))?
                .map_err(|_| "the replica stopped".to_string())?;
            let held = self.replica.held(account);
            if !held.exact {
                tracing::warn!(%account, "no checkpoint in the journal's history: leading from an empty state (the REST baseline fills it)");
            }
            let chain = Chain {
                message: held.journal.max(last),
                event: held.seq,
            };
            self.start_writer(account, guard, held.exact.then_some(held.state), chain);
        }
        crate::cluster::metrics::takeover();
        Ok(())
    }

    /// Starts appending onto `state` (`None`: not known, see `checkpoint_after_baseline`).
    fn start_writer(
        &self,
        account: &str,
        guard: &LeaseGuard,
        state: Option<AccountState>,
        chain: Chain,
    ) {
        let (queue, receiver) = mpsc::channel(QUEUE_LIMIT);
        let (pending, _) = watch::channel(0);
        let unknown = state.is_none();
        let writer = Arc::new(Writer {
            inner: Mutex::new(WriterInner {
                state: state.unwrap_or_default(),
                since_checkpoint: 0,
                last_checkpoint: Instant::now(),
                checkpoint_after_baseline: unknown,
            }),
            queue,
            fencer: guard.fencer(),
            pending: pending.clone(),
            publisher: Mutex::new(None),
        });
        if !unknown {
            writer.queue(Outgoing::checkpoint(&writer.lock().state));
        }
        let publisher = Publisher {
            cluster: self.cluster.clone(),
            subject: self.cluster.names.subject(account),
            term: guard.term,
            id_prefix: format!("{account}.{}", guard.term),
            fencer: guard.fencer(),
            pending,
            give_up_after: self.cluster.settings.lease_ttl,
        };
        let handle = tokio::spawn(publisher.run(receiver, chain));
        *writer
            .publisher
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(handle);
        tokio::spawn(checkpoint_timer(
            Arc::downgrade(&writer),
            self.checkpoint_period,
        ));
        self.writers
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(account.to_string(), writer);
    }

    /// Stops leading `accounts`: appends stop at once; what is queued may land for up to
    /// `flush` (a hand-over lets it, so the next leader continues it); then the publisher
    /// is stopped, so nothing of this term is sent once the lease is released.
    pub async fn step_down(&self, accounts: &[&str], flush: Duration) {
        let writers: Vec<Arc<Writer>> = {
            let mut map = self
                .writers
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            accounts.iter().filter_map(|a| map.remove(*a)).collect()
        };
        for writer in writers {
            let mut pending = writer.pending.subscribe();
            let _ = tokio::time::timeout(flush, pending.wait_for(|n| *n == 0)).await;
            let handle = writer
                .publisher
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            if let Some(handle) = handle {
                handle.abort();
                let _ = handle.await;
            }
        }
    }
}

/// Queues a checkpoint of a led account every `period` (while it is led).
async fn checkpoint_timer(writer: std::sync::Weak<Writer>, period: Duration) {
    let period = period.max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(period / 4).await;
        let Some(writer) = writer.upgrade() else {
            return;
        };
        if writer.fencer.ended() {
            return;
        }
        let mut inner = writer.lock();
        if inner.last_checkpoint.elapsed() >= period && !inner.checkpoint_after_baseline {
            writer.queue(Outgoing::checkpoint(&inner.state));
            inner.last_checkpoint = Instant::now();
            inner.since_checkpoint = 0;
        }
    }
}

impl EventLog for JetStreamLog {
    fn epoch(&self) -> &Epoch {
        self.replica.epoch()
    }

    fn open(&self, account: &str) {
        self.replica.open(account);
    }

    fn append(&self, account: &str, draft: Draft) -> Applied {
        let Some(writer) = self.writer(account) else {
            // Not led here (the lease passed): the next leader's resync covers it.
            crate::cluster::metrics::unled_append();
            return Applied::Unchanged;
        };
        let mut inner = writer.lock();
        let applied = inner.state.apply(&draft.kind, &draft.data);
        if matches!(applied, Applied::Changed | Applied::PassThrough) {
            writer.queue(Outgoing::event(&draft));
            inner.since_checkpoint += 1;
            if inner.since_checkpoint >= self.checkpoint_every && !inner.checkpoint_after_baseline {
                writer.queue(Outgoing::checkpoint(&inner.state));
                inner.since_checkpoint = 0;
                inner.last_checkpoint = Instant::now();
            }
        }
        applied
    }

    fn subscribe(&self, account: &str, from: Option<&Position>) -> Subscription {
        self.replica.subscribe(account, from)
    }

    fn ordered(&self) -> Ordered {
        self.replica.ordered()
    }

    fn start(&self, account: &str, since: Since<'_>) -> (Start, u64) {
        self.replica.start(account, since)
    }

    fn snapshot(&self, account: &str) -> Snapshot {
        self.replica.snapshot(account)
    }

    fn head(&self, account: &str) -> Position {
        self.replica.head(account)
    }

    fn catch_up<'a>(&'a self, account: &'a str, position: &'a Position) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if position.epoch != *self.epoch() {
                return;
            }
            let deadline = Instant::now() + CATCH_UP_LIMIT;
            let mut progress = self.progress.clone();
            loop {
                let reached = |p: &Progress| p.applied >= position.seq;
                if self.head(account).seq >= position.seq || reached(&progress.borrow()) {
                    return;
                }
                let waited = tokio::time::timeout(CATCH_UP_STEP, progress.wait_for(reached));
                if let Ok(Ok(_)) = waited.await {
                    return;
                }
                // Behind, or from the future? Only the journal can say (a position past its
                // last message is answered with a reset; one it holds is waited for, even
                // through a NATS election: a pause, never a reset for a real position).
                let info = tokio::time::timeout(CATCH_UP_STEP * 4, self.cluster.stream.get_info());
                if let Ok(Ok(info)) = info.await
                    && position.seq > info.state.last_sequence
                {
                    return;
                }
                if Instant::now() >= deadline {
                    tracing::warn!(%account, seq = position.seq, "the replica did not reach a resume position in time; the stream resets");
                    return;
                }
            }
        })
    }

    fn baseline_applied(&self, account: &str) {
        let Some(writer) = self.writer(account) else {
            return;
        };
        let mut inner = writer.lock();
        if inner.checkpoint_after_baseline {
            inner.checkpoint_after_baseline = false;
            writer.queue(Outgoing::checkpoint(&inner.state));
            inner.since_checkpoint = 0;
            inner.last_checkpoint = Instant::now();
        }
    }

    fn writer_state(&self, account: &str) -> AccountState {
        match self.writer(account) {
            Some(writer) => writer.lock().state.clone(),
            None => AccountState::from_snapshot(self.snapshot(account)),
        }
    }

    fn holder(&self, account: &str) -> Option<Holder> {
        let leases = self.leases.get()?;
        let node = leases.holder(account);
        let here = node.as_deref() == Some(leases.node()) && self.writer(account).is_some();
        let status = self
            .replica
            .last_status(account)
            .and_then(|data| serde_json::from_value::<UpstreamStatus>(data).ok());
        Some(Holder { node, here, status })
    }

    fn trouble(&self) -> Option<String> {
        use async_nats::connection::State;
        if self.cluster.client.connection_state() != State::Connected {
            return Some("NATS is unreachable".into());
        }
        let progress = self.progress.borrow();
        if let Some(trouble) = &progress.trouble {
            return Some(format!("the journal: {trouble}"));
        }
        (progress.applied < progress.start_target)
            .then(|| "the replica is still reading the journal".into())
    }
}

#[cfg(test)]
mod tests;
