//! One subscriber's feed over one or more accounts, the same for SSE and WebSocket: where it
//! starts (a snapshot, exactly the missed events, or a `reset` snapshot), then every live
//! event of its accounts, merged, each account in order. It tracks the subscriber's
//! position per account, so a stream id can encode all of them. A subscriber that falls a
//! whole bus behind is ended as a slow consumer, never silently skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{SelectAll, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::log::{Ended, EventLog, EventStream, Events, Published, Since, Start};
use crate::model::{Epoch, OrderedPositions, Position, Positions, Snapshot};

/// What a subscriber is sent next.
pub enum Item {
    /// A fresh snapshot: at the start (`reset: false`), or because a resume position could
    /// not be served (`reset: true`).
    Snapshot {
        reset: bool,
        snapshot: Box<Snapshot>,
    },
    Event(Arc<Published>),
    /// The subscriber fell too far behind; the feed ends after this.
    SlowConsumer,
    /// The subscriber's oldest undelivered event waited longer than `--max-lag-ms`: late
    /// data is not passed off as live; the feed ends after this.
    Lagging {
        behind: Duration,
    },
    /// The gateway is shutting down; the feed ends after this.
    ShuttingDown,
    /// The token the feed was opened with expired; the feed ends after this.
    TokenExpired,
    /// Nothing happened for the keep-alive interval.
    Idle,
}

/// The live events of a feed. One account (the common case) is read straight off its
/// subscription: merging costs a boxed future and a task node per event and subscriber.
enum Live {
    One(Events),
    Many(SelectAll<EventStream>),
    /// Every account's events in the whole log's order (a stream over many accounts; the
    /// feed keeps its own).
    Ordered(Events),
}

impl Live {
    /// The next event, or why there are none (cancel-safe).
    async fn next(&mut self) -> Result<Arc<Published>, Ended> {
        match self {
            Live::One(events) | Live::Ordered(events) => events.next().await,
            Live::Many(all) => all.next().await.unwrap_or(Err(Ended::Closed)),
        }
    }
}

pub struct Feed {
    epoch: Epoch,
    initial: VecDeque<Item>,
    live: Live,
    /// (public id, last seq delivered or skipped), in subscription order.
    positions: Vec<(String, u64)>,
    /// Where each account's entry in `positions` is, for feeds over many accounts (a few
    /// are searched in place: a map per subscriber of one account cost memory, bench
    /// `idle-10k`).
    index: Option<HashMap<String, usize>>,
    /// The feed's place in the whole log's order, when it reads in that order.
    watermark: Option<Watermark>,
    /// Accounts whose starting snapshot is not delivered yet: an id must not name them (a
    /// client that drops before their snapshot would resume them from a state it never had).
    unstarted: HashSet<String>,
    types: Option<HashSet<String>>,
    shutdown: watch::Receiver<bool>,
    ended: bool,
    /// `sse` or `ws`, for the metrics.
    transport: &'static str,
    _gauge: crate::metrics::SubscriberGauge,
    deliveries: crate::metrics::Deliveries,
    /// The keep-alive timer, armed on the first wait.
    idle: Option<Pin<Box<Sleep>>>,
    /// When an item was last handed out (the keep-alive counts from there).
    last_sent: Instant,
    /// When the token the feed was opened with expires (`expiry`), if it was.
    expires: Option<Pin<Box<Sleep>>>,
    /// How long a live event may wait for this subscriber (`--max-lag-ms`).
    max_lag: Duration,
}

/// What a feed starts with: its start items, each account's position, and the accounts
/// whose snapshot is still to go out.
struct Begun {
    initial: VecDeque<Item>,
    positions: Vec<(String, u64)>,
    unstarted: HashSet<String>,
}

/// Feeds over more accounts than this find an account's position through a map.
const INDEX_FROM: usize = 8;

/// A resume position per account: `public id -> position`.
pub type Resume = HashMap<String, Position>;

/// Where a feed over many accounts is in the whole log's order, so its id is one place in
/// that order plus the few accounts not at it (`OrderedPositions`), not a position per
/// account: every account of the feed has been given exactly its events up to `at`,
/// except the accounts in `ahead`.
struct Watermark {
    at: u64,
    /// The log's place when the feed subscribed: the start items reach it.
    subscribed: u64,
    /// Accounts whose position is not at `at`: until `at` reaches the order kept here (the
    /// account's latest event when the feed started: a snapshot taken after subscribing, a
    /// position the resume id named), or, with `u64::MAX`, until the account's next event in
    /// order (a live event that came out of order: a JetStream replica re-reading a gap).
    ahead: HashMap<String, u64>,
    /// The digest of the feed's accounts (`set_digest`), written into its ids.
    set: String,
}

impl Watermark {
    /// Moves to `order` (never back); accounts it reaches are at it again.
    fn reach(&mut self, order: u64) {
        if order > self.at {
            self.at = order;
            self.ahead.retain(|_, until| *until > order);
        }
    }

    /// Places an event of the feed the subscriber was just given (or skipped past). Start
    /// items may come before `at` (the missed events of an account the resume id named at
    /// an older position): that account stays named until `at` reaches its latest event.
    fn place(&mut self, event: &Published, live: bool) {
        if event.order > self.at {
            self.ahead.remove(&*event.account);
            self.reach(event.order);
        } else if live {
            self.ahead.insert(event.account.to_string(), u64::MAX);
        }
    }
}

/// A place in the whole log's order a `/v1/events` client resumes from, and the digest of
/// the accounts its stream held (`OrderedPositions::set`): only the same accounts may take
/// the place as theirs.
#[derive(Clone, Debug)]
pub struct Place {
    pub at: Position,
    pub set: String,
}

/// The digest of a set of public ids, whatever their order: the first 8 bytes of the
/// SHA-256 of the sorted ids, in hex.
fn set_digest(accounts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted = accounts.to_vec();
    sorted.sort_unstable();
    let mut hash = Sha256::new();
    for id in sorted {
        hash.update(id.as_bytes());
        hash.update(b"\n");
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Lets this process's log catch up with resume positions another node may have handed
/// out (a cluster replica a little behind), so they resume instead of resetting.
pub async fn settle(log: &dyn EventLog, resume: &Resume) {
    let waits = resume
        .iter()
        .map(|(account, position)| log.catch_up(account, position));
    futures::future::join_all(waits).await;
}

/// As [`settle`], also for a place in the whole log's order (the journal's seq counts it:
/// catching up with it is catching up with that seq, whichever account).
pub async fn settle_ordered(
    log: &dyn EventLog,
    accounts: &[&str],
    resume: &Resume,
    place: Option<&Place>,
) {
    let order = async {
        if let (Some(place), Some(account)) = (place, accounts.first()) {
            log.catch_up(account, &place.at).await;
        }
    };
    futures::future::join(settle(log, resume), order).await;
}

impl Feed {
    /// Subscribes to `accounts` (public ids), each atomically with its appends.
    pub fn open(
        transport: &'static str,
        log: &dyn EventLog,
        accounts: &[&str],
        resume: &Resume,
        types: Option<HashSet<String>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let mut initial = VecDeque::new();
        let mut live = Vec::with_capacity(accounts.len());
        let mut positions = Vec::with_capacity(accounts.len());
        let mut unstarted = HashSet::new();
        for &id in accounts {
            let subscription = log.subscribe(id, resume.get(id));
            if !matches!(subscription.start, Start::Replay { .. }) {
                unstarted.insert(id.to_string());
            }
            let position = start_items(transport, subscription.start, &mut initial);
            positions.push((id.to_string(), position));
            live.push(subscription.events);
        }
        let live = if live.len() == 1 {
            Live::One(live.remove(0))
        } else {
            Live::Many(live.into_iter().map(Events::into_stream).collect())
        };
        let begun = Begun {
            initial,
            positions,
            unstarted,
        };
        Self::assemble(transport, log, begun, live, types, shutdown)
    }

    /// Subscribes to many `accounts` (public ids) in the whole log's order, from
    /// `watermark` (a place in that order) and `resume` (the accounts named apart from it):
    /// ids then stay short however many accounts the feed holds. The start items are the
    /// snapshots (fresh or reset) first, then the missed events of every account merged in
    /// the log's order, up to where the feed's live events begin.
    pub fn open_ordered(
        transport: &'static str,
        log: &dyn EventLog,
        accounts: &[&str],
        resume: &Resume,
        place: Option<&Place>,
        types: Option<HashSet<String>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        // Live events first: everything after `subscribed` comes through them, everything up
        // to it is in the starts read below.
        let ordered = log.ordered();
        let subscribed = ordered.at;
        // A place of another epoch, from the future, or of another set of accounts (a token
        // with other scopes, an account added) cannot say what the client holds: every
        // account it does not name gets a reset.
        let set = set_digest(accounts);
        let usable =
            |p: &&Place| p.at.epoch == *log.epoch() && p.at.seq <= subscribed && p.set == set;
        let watermark = place.filter(usable).map(|p| &p.at);
        let reset_unnamed = place.is_some() && watermark.is_none();
        let mut mark = Watermark {
            at: watermark.map_or(subscribed, |w| w.seq),
            subscribed,
            ahead: HashMap::new(),
            set: String::new(),
        };
        let mut snapshots = VecDeque::new();
        let mut missed = Vec::new();
        let mut positions = Vec::with_capacity(accounts.len());
        let mut unstarted = HashSet::new();
        for &id in accounts {
            let since = match (resume.get(id), watermark) {
                (Some(position), _) => Since::Event(position),
                (None, Some(watermark)) => Since::Order(watermark),
                (None, None) => Since::Fresh,
            };
            let (start, latest) = match log.start(id, since) {
                (Start::Snapshot(snapshot), latest) if reset_unnamed => {
                    (Start::Reset(snapshot), latest)
                }
                started => started,
            };
            let position = match start {
                Start::Snapshot(_) | Start::Reset(_) => {
                    unstarted.insert(id.to_string());
                    if latest > mark.at {
                        mark.ahead.insert(id.to_string(), latest);
                    }
                    start_items(transport, start, &mut snapshots)
                }
                Start::Replay { after, events } => {
                    crate::metrics::stream_start(transport, "replay");
                    // A named position stays named until the place passes the account's
                    // latest event: its missed events may lie before the place, and the
                    // ids written while they go out must name where it is.
                    if resume.contains_key(id) {
                        mark.ahead.insert(id.to_string(), latest);
                    }
                    missed.extend(events.into_iter().filter(|e| e.order <= subscribed));
                    after
                }
            };
            positions.push((id.to_string(), position));
        }
        missed.sort_by_key(|e| e.order);
        snapshots.extend(missed.into_iter().map(Item::Event));
        mark.set = set;
        let begun = Begun {
            initial: snapshots,
            positions,
            unstarted,
        };
        let live = Live::Ordered(ordered.events);
        let mut feed = Self::assemble(transport, log, begun, live, types, shutdown);
        feed.watermark = Some(mark);
        feed
    }

    fn assemble(
        transport: &'static str,
        log: &dyn EventLog,
        begun: Begun,
        live: Live,
        types: Option<HashSet<String>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let Begun {
            initial,
            positions,
            unstarted,
        } = begun;
        let index = (positions.len() > INDEX_FROM).then(|| {
            positions
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (id.clone(), i))
                .collect()
        });
        Self {
            epoch: log.epoch().clone(),
            initial,
            live,
            positions,
            index,
            watermark: None,
            unstarted,
            types,
            shutdown,
            ended: false,
            transport,
            _gauge: crate::metrics::SubscriberGauge::open(transport),
            deliveries: crate::metrics::Deliveries::new(transport),
            idle: None,
            last_sent: Instant::now(),
            expires: None,
            max_lag: Duration::MAX,
        }
    }

    /// Cuts the feed with [`Item::Lagging`] when a live event reaches it older than `max_lag`.
    pub fn max_lag(mut self, max_lag: Duration) -> Self {
        self.max_lag = max_lag;
        self
    }

    /// Ends the feed at `deadline` (a token's expiry) with [`Item::TokenExpired`].
    pub fn until(mut self, deadline: Option<Instant>) -> Self {
        self.expires = deadline.map(|at| Box::pin(tokio::time::sleep_until(at)));
        self
    }

    /// Whether the token the feed was opened with has expired by `now`.
    fn token_expired_at(&self, now: Instant) -> bool {
        self.expires.as_ref().is_some_and(|at| at.deadline() <= now)
    }

    fn wanted(&self, event: &Published) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&event.kind))
    }

    /// Records that the subscriber is past `seq` of `account`: false if it already was,
    /// `None` if the account is not one of the feed's.
    fn advance(&mut self, account: &str, seq: u64) -> Option<bool> {
        let i = self.slot(account)?;
        let position = &mut self.positions[i].1;
        let past = seq > *position;
        if past {
            *position = seq;
        }
        Some(past)
    }

    /// Where `account`'s entry in `positions` is, if the feed holds it.
    fn slot(&self, account: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(account).copied(),
            None => self.positions.iter().position(|(id, _)| id == account),
        }
    }

    /// Takes an event in: whether it is one of the feed's accounts, past its position, and
    /// wanted. A feed in the log's order sees every account's events, and places each.
    fn take(&mut self, event: &Published, live: bool) -> bool {
        match (
            self.advance(&event.account, event.seq),
            self.watermark.as_mut(),
        ) {
            (advanced, None) => advanced.unwrap_or(true) && self.wanted(event),
            (Some(true), Some(watermark)) => {
                watermark.place(event, live);
                self.wanted(event)
            }
            (_, Some(watermark)) => {
                watermark.reach(event.order);
                false
            }
        }
    }

    /// The next item, or `None` once the feed has ended. One function on purpose: the start
    /// items, then one `select!` over live events, the keep-alive timer and shutdown, is the
    /// per-event hot path (bench `fanout`, `Feed::next`) and reads best at once.
    pub async fn next(&mut self, keep_alive: Duration) -> Option<Item> {
        // A token past its expiry ends the feed before anything else goes out: the start
        // items here, live events in their arm below (the timer may fire up to a millisecond
        // late), each with the one clock read that path makes anyway.
        if !self.ended && !self.initial.is_empty() && self.token_expired_at(Instant::now()) {
            self.ended = true;
            self.initial.clear();
            return Some(Item::TokenExpired);
        }
        while let Some(item) = self.initial.pop_front() {
            match &item {
                Item::Snapshot { snapshot, .. } => {
                    let (account, seq) = (snapshot.account.clone(), snapshot.seq);
                    self.unstarted.remove(&account);
                    if let Some(i) = self.slot(&account) {
                        self.positions[i].1 = seq;
                    }
                    return Some(item);
                }
                Item::Event(event) => {
                    let event = event.clone();
                    if self.take(&event, false) {
                        self.deliveries.record(&event.kind, event.upstream_ms);
                        return Some(item);
                    }
                }
                _ => return Some(item),
            }
        }
        if self.ended {
            return None;
        }
        // Past its start the feed has every event up to where its live events begin.
        if let Some(watermark) = self.watermark.as_mut() {
            let subscribed = watermark.subscribed;
            watermark.reach(subscribed);
        }
        // The keep-alive timer is armed once and moved only when it fires before the stream
        // was silent for `keep_alive`: a delivery then costs no timer (de)registration.
        loop {
            let idle = self
                .idle
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(keep_alive)));
            let has_deadline = self.expires.is_some();
            tokio::select! {
                // An expired token first: a busy account must not keep its stream past it.
                // Then ready events: the other branches then are not even polled.
                biased;
                _ = expired(&mut self.expires), if has_deadline => {
                    self.ended = true;
                    return Some(Item::TokenExpired);
                }
                received = self.live.next() => match received {
                    Ok(event) if self.watermark.is_some() && self.slot(&event.account).is_none() => {
                        // Another account's event, in the whole log's order: only a place.
                        self.take(&event, true);
                    }
                    Ok(event) => {
                        // The oldest undelivered event is the one just taken: the check
                        // costs one subtraction beside the clock read a delivery makes.
                        let now = Instant::now();
                        if self.token_expired_at(now) {
                            self.ended = true;
                            return Some(Item::TokenExpired);
                        }
                        let behind = now.saturating_duration_since(event.at);
                        if behind > self.max_lag {
                            crate::metrics::lagging_subscriber(self.transport);
                            self.ended = true;
                            return Some(Item::Lagging { behind });
                        }
                        if self.take(&event, true) {
                            self.deliveries.record(&event.kind, event.upstream_ms);
                            self.last_sent = now;
                            return Some(Item::Event(event));
                        }
                    }
                    Err(Ended::FellBehind { .. }) => {
                        crate::metrics::slow_consumer(self.transport);
                        self.ended = true;
                        return Some(Item::SlowConsumer);
                    }
                    Err(Ended::Closed) => return None,
                },
                _ = idle.as_mut() => {
                    let (now, due) = (Instant::now(), self.last_sent + keep_alive);
                    let Some(idle) = self.idle.as_mut() else { continue };
                    if due > now {
                        idle.as_mut().reset(due);
                        continue;
                    }
                    self.last_sent = now;
                    idle.as_mut().reset(now + keep_alive);
                    return Some(Item::Idle);
                }
                _ = crate::shutdown::signalled(&mut self.shutdown) => {
                    self.ended = true;
                    return Some(Item::ShuttingDown);
                }
            }
        }
    }

    /// The position over every account the subscriber holds, as one id:
    /// `<epoch>-<id>.<seq>.<id>.<seq>` (an account still waiting for its snapshot is left
    /// out, so a resume gives it one); in the log's order, `<epoch>-~<place>~<set>` and the
    /// accounts not at the place, or none while snapshots still go out.
    pub fn combined_id(&self) -> Option<String> {
        if let Some(watermark) = &self.watermark {
            // While snapshots are still going out no id is written: a client that drops
            // now gets them again (a fresh start, or the resume it came with).
            if !self.unstarted.is_empty() {
                return None;
            }
            let ahead = watermark.ahead.keys().filter_map(|id| {
                let i = self.slot(id)?;
                Some((id.as_str(), self.positions[i].1))
            });
            let id = OrderedPositions::id_of(&self.epoch, watermark.at, &watermark.set, ahead);
            return Some(id);
        }
        Some(self.explicit_id())
    }

    fn explicit_id(&self) -> String {
        if self.unstarted.is_empty() {
            return Positions::id_of(&self.epoch, &self.positions);
        }
        let held: Vec<(String, u64)> = self
            .positions
            .iter()
            .filter(|(id, _)| !self.unstarted.contains(id))
            .cloned()
            .collect();
        Positions::id_of(&self.epoch, &held)
    }
}

/// Resolves at the deadline (never without one).
async fn expired(deadline: &mut Option<Pin<Box<Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Queues what a subscription starts with; returns the position the feed is then at.
fn start_items(transport: &'static str, start: Start, initial: &mut VecDeque<Item>) -> u64 {
    let (label, position) = match start {
        Start::Snapshot(snapshot) => {
            let seq = snapshot.seq;
            initial.push_back(Item::Snapshot {
                reset: false,
                snapshot: Box::new(snapshot),
            });
            ("snapshot", seq)
        }
        Start::Reset(snapshot) => {
            let seq = snapshot.seq;
            initial.push_back(Item::Snapshot {
                reset: true,
                snapshot: Box::new(snapshot),
            });
            ("reset", seq)
        }
        Start::Replay { after, events } => {
            initial.extend(events.into_iter().map(Item::Event));
            ("replay", after)
        }
    };
    crate::metrics::stream_start(transport, label);
    position
}

/// The resume positions a `/v1/events` id carries (none when it is not one), and the place
/// in the whole log's order it names, if it is one of those; an account named twice resumes
/// from its last position.
pub fn resume_of(text: &str) -> (Resume, Option<Place>) {
    let pairs = |epoch: &Epoch, accounts: Vec<(String, u64)>| -> Resume {
        accounts
            .into_iter()
            .map(|(id, seq)| {
                let epoch = epoch.clone();
                (id, Position { epoch, seq })
            })
            .collect()
    };
    if let Ok(ordered) = text.parse::<OrderedPositions>() {
        let place = Place {
            at: ordered.watermark(),
            set: ordered.set,
        };
        return (pairs(&ordered.epoch, ordered.accounts), Some(place));
    }
    match text.parse::<Positions>() {
        Ok(ids) => (pairs(&ids.epoch, ids.accounts), None),
        Err(_) => (Resume::new(), None),
    }
}
