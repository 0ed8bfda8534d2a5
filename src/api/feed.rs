//! One subscriber's feed over one or more accounts, the same for SSE and WebSocket: where it
//! starts (a snapshot, exactly the missed events, or a `reset` snapshot), then every live
//! event of its accounts, merged, each account in order. It tracks the subscriber's
//! position per account, so a stream id can encode all of them. A subscriber that falls a
//! whole bus behind is ended as a slow consumer, never silently skipped.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{SelectAll, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::account::{Account, Published, Snapshot, Start};

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
    /// The gateway is shutting down; the feed ends after this.
    ShuttingDown,
    /// Nothing happened for the keep-alive interval.
    Idle,
}

type Merged = Pin<Box<dyn Stream<Item = Result<Arc<Published>, BroadcastStreamRecvError>> + Send>>;

/// The live buses of a feed. One account (the common case) is read straight off its
/// receiver: merging costs a boxed future and a task node per event and subscriber.
enum Live {
    One(broadcast::Receiver<Arc<Published>>),
    Many(SelectAll<Merged>),
}

impl Live {
    /// The next event (cancel-safe), `None` once every bus closed.
    async fn next(&mut self) -> Option<Result<Arc<Published>, BroadcastStreamRecvError>> {
        match self {
            Live::One(receiver) => match receiver.recv().await {
                Ok(event) => Some(Ok(event)),
                Err(RecvError::Lagged(n)) => Some(Err(BroadcastStreamRecvError::Lagged(n))),
                Err(RecvError::Closed) => None,
            },
            Live::Many(all) => all.next().await,
        }
    }
}

pub struct Feed {
    epoch: String,
    initial: VecDeque<Item>,
    live: Live,
    /// (public id, last seq delivered or skipped), in subscription order.
    positions: Vec<(String, u64)>,
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
}

/// A resume position per account: `public id -> (epoch, seq)`.
pub type Resume = HashMap<String, (String, u64)>;

impl Feed {
    /// Subscribes to `accounts`, atomically with their publishing.
    pub fn open(
        transport: &'static str,
        accounts: &[Arc<Account>],
        resume: &Resume,
        types: Option<HashSet<String>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let epoch = accounts
            .first()
            .map(|a| a.epoch().to_string())
            .unwrap_or_default();
        let mut initial = VecDeque::new();
        let mut receivers = Vec::with_capacity(accounts.len());
        let mut positions = Vec::with_capacity(accounts.len());
        for account in accounts {
            let id = account.info.public_id.clone();
            let from = resume.get(&id).map(|(epoch, seq)| (epoch.as_str(), *seq));
            let (start, receiver) = account.subscribe(from);
            let position = match start {
                Start::Snapshot(snapshot) => {
                    crate::metrics::stream_start(transport, "snapshot");
                    let seq = snapshot.seq;
                    initial.push_back(Item::Snapshot {
                        reset: false,
                        snapshot: Box::new(snapshot),
                    });
                    seq
                }
                Start::Reset(snapshot) => {
                    crate::metrics::stream_start(transport, "reset");
                    let seq = snapshot.seq;
                    initial.push_back(Item::Snapshot {
                        reset: true,
                        snapshot: Box::new(snapshot),
                    });
                    seq
                }
                Start::Replay(events) => {
                    crate::metrics::stream_start(transport, "replay");
                    let resumed_at = from.map(|(_, seq)| seq).unwrap_or_default();
                    initial.extend(events.into_iter().map(Item::Event));
                    resumed_at
                }
            };
            positions.push((id, position));
            receivers.push(receiver);
        }
        let live = if receivers.len() == 1 {
            Live::One(receivers.remove(0))
        } else {
            Live::Many(
                receivers
                    .into_iter()
                    .map(|r| Box::pin(BroadcastStream::new(r)) as Merged)
                    .collect(),
            )
        };
        Self {
            epoch,
            initial,
            live,
            positions,
            types,
            shutdown,
            ended: false,
            transport,
            _gauge: crate::metrics::SubscriberGauge::open(transport),
            deliveries: crate::metrics::Deliveries::new(transport),
            idle: None,
            last_sent: Instant::now(),
        }
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

    /// The next item, or `None` once the feed has ended.
    pub async fn next(&mut self, keep_alive: Duration) -> Option<Item> {
        while let Some(item) = self.initial.pop_front() {
            match &item {
                Item::Snapshot { snapshot, .. } => {
                    let (account, seq) = (snapshot.account.clone(), snapshot.seq);
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
            tokio::select! {
                // Ready events first: the other branches then are not even polled.
                biased;
                received = self.live.next() => match received {
                    Some(Ok(event)) => {
                        if self.advance(&event.account, event.seq) && self.wanted(&event) {
                            self.deliveries.record(&event.kind, event.upstream_ms);
                            self.last_sent = Instant::now();
                            return Some(Item::Event(event));
                        }
                    }
                    Some(Err(BroadcastStreamRecvError::Lagged(_))) => {
                        crate::metrics::slow_consumer(self.transport);
                        self.ended = true;
                        return Some(Item::SlowConsumer);
                    }
                    None => return None,
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
                _ = super::sse::shutdown_signal(&mut self.shutdown) => {
                    self.ended = true;
                    return Some(Item::ShuttingDown);
                }
            }
        }
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// The position over every account, as one id: `<epoch>-<id>.<seq>.<id>.<seq>`.
    pub fn combined_id(&self) -> String {
        let parts: Vec<String> = self
            .positions
            .iter()
            .map(|(id, seq)| format!("{id}.{seq}"))
            .collect();
        format!("{}-{}", self.epoch, parts.join("."))
    }
}

/// Reads `<epoch>-<id>.<seq>.<id>.<seq>` (the epoch holds no `-`; public ids hold no `.`).
pub fn parse_combined_id(text: &str) -> Resume {
    let Some((epoch, rest)) = text.trim().split_once('-') else {
        return Resume::new();
    };
    let parts: Vec<&str> = rest.split('.').collect();
    parts
        .chunks(2)
        .filter_map(|pair| match pair {
            [id, seq] if !id.is_empty() => {
                Some((id.to_string(), (epoch.to_string(), seq.parse().ok()?)))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_ids_round_trip() {
        let resume = parse_combined_id("mwts9jr5-individual.41.roth-ira.7");
        assert_eq!(
            resume.get("individual"),
            Some(&("mwts9jr5".to_string(), 41))
        );
        assert_eq!(resume.get("roth-ira"), Some(&("mwts9jr5".to_string(), 7)));
        assert_eq!(resume.len(), 2);
        assert!(parse_combined_id("garbage").is_empty());
        assert_eq!(parse_combined_id("e-a.x.b.2").len(), 1);
    }
}
