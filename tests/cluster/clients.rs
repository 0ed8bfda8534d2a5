//! SSE clients that hop between nodes: each follows one account, reconnects every second
//! or so to a different node at random with its last id, and records every seq it gets.
//! The oracle: afterwards one replay per account from the journal (through a node) says
//! what each client should have seen; a client must have seen exactly that, in order.

use std::collections::BTreeMap;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;

/// What one client saw.
#[derive(Debug, Default)]
pub struct Record {
    pub account: String,
    pub epoch: String,
    /// The seq of the snapshot it started from.
    pub start: u64,
    /// Every event's seq after it, in arrival order.
    pub seqs: Vec<u64>,
    pub resets: u32,
    pub connections: u32,
    /// Anything a client should never see.
    pub faults: Vec<String>,
}

fn split(id: &str) -> Option<(String, u64)> {
    let (epoch, seq) = id.rsplit_once('-')?;
    Some((epoch.to_string(), seq.parse().ok()?))
}

/// Starts `count` clients over `accounts`, hopping over `nodes` (base URLs) until `stop`.
pub fn start(
    count: usize,
    accounts: &[String],
    nodes: &[String],
    stop: &watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<Record>> {
    (0..count)
        .map(|i| {
            let account = accounts[i % accounts.len()].clone();
            tokio::spawn(hop(i as u64, account, nodes.to_vec(), stop.clone()))
        })
        .collect()
}

async fn hop(
    seed: u64,
    account: String,
    nodes: Vec<String>,
    mut stop: watch::Receiver<bool>,
) -> Record {
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("a client");
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut record = Record {
        account: account.clone(),
        ..Record::default()
    };
    let mut last: Option<String> = None;
    let mut node = rng.random_range(0..nodes.len());
    while !*stop.borrow() {
        node = (node + rng.random_range(1..nodes.len())) % nodes.len();
        let stay = Duration::from_millis(rng.random_range(300..1500));
        let url = format!("{}/v1/accounts/{account}/events", nodes[node]);
        let mut request = http.get(url).header("accept", "text/event-stream");
        if let Some(id) = &last {
            request = request.header("last-event-id", id);
        }
        let response = match request.send().await {
            Ok(response) if response.status().is_success() => response,
            _ => {
                // That node is down (a fault): another one.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        record.connections += 1;
        let mut events = response.bytes_stream().eventsource();
        let until = tokio::time::Instant::now() + stay;
        loop {
            let event = tokio::select! {
                event = events.next() => event,
                _ = tokio::time::sleep_until(until) => break,
                _ = stop.changed() => break,
            };
            let Some(Ok(event)) = event else { break };
            if event.data.is_empty() {
                continue;
            }
            let Some((epoch, seq)) = split(&event.id) else {
                record
                    .faults
                    .push(format!("an id without a seq: {:?}", event.id));
                continue;
            };
            match event.event.as_str() {
                "snapshot" if last.is_none() => {
                    record.epoch = epoch;
                    record.start = seq;
                }
                "snapshot" => record.faults.push(format!("a snapshot on resume at {seq}")),
                "reset" => {
                    record.resets += 1;
                    record
                        .faults
                        .push(format!("a reset at {seq} after {last:?}"));
                }
                _ => {
                    if record.seqs.last().is_some_and(|&prev| seq <= prev) || seq <= record.start {
                        record
                            .faults
                            .push(format!("seq {seq} after {:?}", record.seqs.last()));
                    }
                    record.seqs.push(seq);
                }
            }
            last = Some(event.id);
        }
    }
    record
}

/// Every event seq of `account` after `from` up to `through`, replayed through `node`.
pub async fn journal(
    http: &reqwest::Client,
    node: &str,
    account: &str,
    epoch: &str,
    from: u64,
    through: u64,
) -> Vec<u64> {
    let url = format!("{node}/v1/accounts/{account}/events");
    let response = http
        .get(url)
        .header("accept", "text/event-stream")
        .header("last-event-id", format!("{epoch}-{from}"))
        .send()
        .await
        .expect("a replay");
    let mut events = response.bytes_stream().eventsource();
    let mut seqs = Vec::new();
    while seqs.last().unwrap_or(&from) < &through {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the replay of {account} stopped at {:?} of {through}",
                    seqs.last()
                )
            })
            .expect("the replay goes on")
            .unwrap_or_else(|e| {
                panic!(
                    "the replay of {account} from {from} stopped at {:?} of {through}: {e}",
                    seqs.last()
                )
            });
        if event.data.is_empty() {
            continue;
        }
        assert_ne!(
            event.event, "reset",
            "the replay of {account} from {from} reset: history lost"
        );
        if let Some((_, seq)) = split(&event.id) {
            seqs.push(seq);
        }
    }
    seqs
}

/// Checks every client against the journal: exactly its events, once each, in order, and
/// no reset or other fault. Returns (clients, events checked).
pub async fn check(http: &reqwest::Client, node: &str, records: &[Record]) -> (usize, usize) {
    let mut by_account: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for record in records {
        assert!(
            record.faults.is_empty(),
            "client of {} saw: {:?}",
            record.account,
            record.faults
        );
        assert!(
            record.connections >= 2,
            "a client of {} never hopped",
            record.account
        );
        by_account.entry(&record.account).or_default().push(record);
    }
    let mut events = 0;
    for (account, records) in by_account {
        let from = records.iter().map(|r| r.start).min().unwrap_or(0);
        let through = records
            .iter()
            .filter_map(|r| r.seqs.last().copied())
            .max()
            .unwrap_or(from);
        let epoch = &records[0].epoch;
        let truth = journal(http, node, account, epoch, from, through).await;
        for record in records {
            assert_eq!(&record.epoch, epoch, "one epoch across nodes and restarts");
            let last = record.seqs.last().copied().unwrap_or(record.start);
            let expected: Vec<u64> = truth
                .iter()
                .copied()
                .filter(|&s| s > record.start && s <= last)
                .collect();
            if record.seqs != expected {
                let missing: Vec<_> = expected
                    .iter()
                    .filter(|s| !record.seqs.contains(s))
                    .collect();
                let extra: Vec<_> = record
                    .seqs
                    .iter()
                    .filter(|s| !expected.contains(s))
                    .collect();
                panic!(
                    "a client of {account} from {}: missing {missing:?}, extra {extra:?}",
                    record.start
                );
            }
            events += record.seqs.len();
        }
    }
    (records.len(), events)
}

/// One SSE stream held open (not hopping), read on demand.
pub struct Follower {
    events: std::pin::Pin<Box<dyn futures::Stream<Item = eventsource_stream::Event> + Send>>,
    pub epoch: String,
    start: u64,
    seen: Vec<u64>,
}

impl Follower {
    pub async fn open(http: &reqwest::Client, node: &str, account: &str) -> Self {
        let response = http
            .get(format!("{node}/v1/accounts/{account}/events"))
            .header("accept", "text/event-stream")
            .timeout(Duration::from_secs(600))
            .send()
            .await
            .expect("a stream");
        let events = response
            .bytes_stream()
            .eventsource()
            .filter_map(|e| async move { e.ok().filter(|e| !e.data.is_empty()) });
        let mut follower = Self {
            events: Box::pin(events),
            epoch: String::new(),
            start: 0,
            seen: Vec::new(),
        };
        let snapshot = follower.next().await;
        assert_eq!(snapshot.event, "snapshot");
        let (epoch, start) = split(&snapshot.id).expect("an id");
        follower.epoch = epoch;
        follower.start = start;
        follower
    }

    async fn next(&mut self) -> eventsource_stream::Event {
        tokio::time::timeout(Duration::from_secs(60), self.events.next())
            .await
            .expect("an event within 60 s")
            .expect("the stream stays open")
    }

    /// The seq of the next event.
    pub async fn next_seq(&mut self) -> u64 {
        let event = self.next().await;
        assert!(
            !["snapshot", "reset"].contains(&event.event.as_str()),
            "a {} mid-stream",
            event.event
        );
        let (_, seq) = split(&event.id).expect("an id");
        self.seen.push(seq);
        seq
    }

    /// Every seq this stream delivered after `from` up to `through`.
    pub async fn seen_through(&self, through: u64) -> Vec<u64> {
        let from = self.seen.first().copied().unwrap_or(self.start);
        self.seen
            .iter()
            .copied()
            .filter(|&s| s > from && s <= through)
            .collect()
    }
}
