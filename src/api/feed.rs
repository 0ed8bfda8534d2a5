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

use crate::log::{Ended, EventLog, EventStream, Events, Published, Start};
use crate::model::{Epoch, Position, Positions, Snapshot};

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
}

impl Live {
    /// The next event, or why there are none (cancel-safe).
    async fn next(&mut self) -> Result<Arc<Published>, Ended> {
        match self {
            Live::One(events) => events.next().await,
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

/// A resume position per account: `public id -> position`.
pub type Resume = HashMap<String, Position>;

/// Lets this process's log catch up with resume positions another node may have handed
/// out (a cluster replica a little behind), so they resume instead of resetting.
pub async fn settle(log: &dyn EventLog, resume: &Resume) {
    let waits = resume
        .iter()
        .map(|(account, position)| log.catch_up(account, position));
    futures::future::join_all(waits).await;
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
        Self {
            epoch: log.epoch().clone(),
            initial,
            live,
            positions,
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

    /// Records that the subscriber is past `seq` of `account`; false if it already was.
    fn advance(&mut self, account: &str, seq: u64) -> bool {
        match self.positions.iter_mut().find(|(id, _)| id == account) {
            Some((_, position)) if seq > *position => {
                *position = seq;
                true
            }
            Some(_) => false,
            None => true,
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
                    if let Some((_, position)) =
                        self.positions.iter_mut().find(|(id, _)| *id == account)
                    {
                        *position = seq;
                    }
                    return Some(item);
                }
                Item::Event(event) => {
                    let event = event.clone();
                    if self.advance(&event.account, event.seq) && self.wanted(&event) {
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
                        if self.advance(&event.account, event.seq) && self.wanted(&event) {
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
    /// out, so a resume gives it one).
    pub fn combined_id(&self) -> String {
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

/// The resume positions a `/v1/events` id carries (none when it is not one); an account
/// named twice resumes from its last position.
pub fn resume_of(text: &str) -> Resume {
    let Ok(ids) = text.parse::<Positions>() else {
        return Resume::new();
    };
    let epoch = ids.epoch;
    ids.accounts
        .into_iter()
        .map(|(id, seq)| {
            let epoch = epoch.clone();
            (id, Position { epoch, seq })
        })
        .collect()
}
