//! The event log's contract: what every implementation must show, written once and run
//! against each (today the ring; a JetStream log is to join it). Each check returns what went
//! wrong instead of panicking, so a deliberately broken log can be shown to fail it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::{Draft, Ended, EventLog, RingLimits, RingLog, Start, Subscription};
use crate::model::{Epoch, EventKind, Position, Source};

const ACCOUNT: &str = "main";

/// Makes a fresh, empty log with these limits.
pub type Factory = dyn Fn(RingLimits) -> Arc<dyn EventLog>;

fn limits(history: usize, bus: usize) -> RingLimits {
    RingLimits {
        ring_events: history,
        ring_max_age: Duration::from_secs(3600),
        ring_max_bytes: usize::MAX,
        bus_capacity: bus,
    }
}

/// Appends order `n` (each one a new order, so the state grows by one per event).
fn append_order(log: &dyn EventLog, n: u64) {
    let draft = Draft {
        kind: EventKind::Order,
        data: json!({"id": n, "status": "Live", "updated-at": n}),
        timestamp: None,
        source: Source::Stream,
    };
    log.append(ACCOUNT, draft);
}

fn seq_of(event: &super::Published) -> u64 {
    event.seq
}

/// Reads live events until `last`, checking they continue `from` without a gap or repeat.
async fn read_through(events: &mut super::Events, from: u64, last: u64) -> Result<(), String> {
    let mut expected = from + 1;
    while expected <= last {
        let next = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .map_err(|_| format!("no event {expected} within 5 s"))?;
        let seq = next
            .map(|e| seq_of(&e))
            .map_err(|e| format!("ended: {e:?}"))?;
        if seq != expected {
            return Err(format!("expected event {expected}, got {seq}"));
        }
        expected += 1;
    }
    Ok(())
}

/// Subscribers that join while another thread appends get a snapshot exact at its position
/// and then every later event, gap-free.
pub async fn gap_free_under_concurrent_appends(make: &Factory) -> Result<(), String> {
    const TOTAL: u64 = 2_000;
    let log = make(limits(10_000, 4_096));
    log.open(ACCOUNT);
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || (1..=TOTAL).for_each(|n| append_order(log.as_ref(), n)))
    };
    let mut subscriptions = Vec::new();
    while subscriptions.len() < 20 {
        subscriptions.push(log.subscribe(ACCOUNT, None));
        tokio::task::yield_now().await;
    }
    writer
        .join()
        .map_err(|_| "the writer panicked".to_string())?;
    for Subscription { start, mut events } in subscriptions {
        let Start::Snapshot(snapshot) = start else {
            return Err("a subscriber without a position must start from a snapshot".into());
        };
        if snapshot.orders.len() as u64 != snapshot.seq {
            return Err(format!(
                "a snapshot at seq {} holds {} orders: not exact at its position",
                snapshot.seq,
                snapshot.orders.len()
            ));
        }
        read_through(&mut events, snapshot.seq, TOTAL).await?;
    }
    Ok(())
}

/// A subscriber resuming after event N gets exactly N+1.. from the history, then live ones.
pub async fn resume_exactly_after_n(make: &Factory) -> Result<(), String> {
    let log = make(limits(100, 64));
    log.open(ACCOUNT);
    (1..=10).for_each(|n| append_order(log.as_ref(), n));
    let from = Position {
        epoch: log.epoch().clone(),
        seq: 4,
    };
    let Subscription { start, mut events } = log.subscribe(ACCOUNT, Some(&from));
    let Start::Replay {
        after,
        events: missed,
    } = start
    else {
        return Err("a position in the history must replay".into());
    };
    let seqs: Vec<u64> = missed.iter().map(|e| seq_of(e)).collect();
    if after != 4 || seqs != (5..=10).collect::<Vec<_>>() {
        return Err(format!(
            "resumed after 4, replayed {seqs:?} (after {after})"
        ));
    }
    append_order(log.as_ref(), 11);
    read_through(&mut events, 10, 11).await
}

/// Positions the log cannot serve get a reset: another epoch, one that left the history,
/// one from the future.
pub async fn reset_when_the_position_cannot_be_served(make: &Factory) -> Result<(), String> {
    let log = make(limits(5, 64));
    (1..=20).for_each(|n| append_order(log.as_ref(), n));
    let epoch = log.epoch().clone();
    let other = Epoch::new("elsewhere").ok_or("an epoch")?;
    for (what, from) in [
        (
            "another epoch",
            Position {
                epoch: other,
                seq: 20,
            },
        ),
        (
            "left the history",
            Position {
                epoch: epoch.clone(),
                seq: 2,
            },
        ),
        (
            "from the future",
            Position {
                epoch: epoch.clone(),
                seq: 99,
            },
        ),
    ] {
        match log.subscribe(ACCOUNT, Some(&from)).start {
            Start::Reset(snapshot) if snapshot.seq == 20 && snapshot.orders.len() == 20 => {}
            Start::Reset(snapshot) => {
                return Err(format!("{what}: a reset at seq {}, not 20", snapshot.seq));
            }
            _ => return Err(format!("{what}: no reset")),
        }
    }
    Ok(())
}

/// A subscriber that stops reading is ended with its reason once it is too far behind,
/// after a gap-free prefix; it never gets a silent gap and the log never buffers for it
/// without bound.
pub async fn slow_subscriber_ends_with_its_reason(make: &Factory) -> Result<(), String> {
    let log = make(limits(10_000, 16));
    log.open(ACCOUNT);
    let Subscription { start, mut events } = log.subscribe(ACCOUNT, None);
    let Start::Snapshot(snapshot) = start else {
        return Err("expected a snapshot".into());
    };
    (1..=1_000).for_each(|n| append_order(log.as_ref(), n));
    let mut expected = snapshot.seq + 1;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Err(_) => return Err("a slow subscriber was neither served nor ended".into()),
            Ok(Ok(event)) if seq_of(&event) == expected => expected += 1,
            Ok(Ok(event)) => {
                return Err(format!(
                    "silent gap: expected {expected}, got {}",
                    seq_of(&event)
                ));
            }
            Ok(Err(Ended::FellBehind { missed })) if missed > 0 => return Ok(()),
            Ok(Err(other)) => return Err(format!("ended with {other:?}")),
        }
        if expected > 1_000 {
            return Err("a subscriber 1,000 events behind was never cut".into());
        }
    }
}

/// The history keeps at most its configured size: the latest events replay, older ones
/// reset.
pub async fn history_is_bounded(make: &Factory) -> Result<(), String> {
    let log = make(limits(50, 64));
    (1..=5_000).for_each(|n| append_order(log.as_ref(), n));
    let at = |seq| Position {
        epoch: log.epoch().clone(),
        seq,
    };
    match log.subscribe(ACCOUNT, Some(&at(4_950))).start {
        Start::Replay { events, .. } if events.len() == 50 => {}
        _ => return Err("the latest 50 events must replay".into()),
    }
    match log.subscribe(ACCOUNT, Some(&at(4_900))).start {
        Start::Reset(_) => Ok(()),
        _ => Err("an event beyond the history's size was kept".into()),
    }
}

/// Every check, in order; the first failure is returned.
pub async fn check(make: &Factory) -> Result<(), String> {
    gap_free_under_concurrent_appends(make).await?;
    resume_exactly_after_n(make).await?;
    reset_when_the_position_cannot_be_served(make).await?;
    slow_subscriber_ends_with_its_reason(make).await?;
    history_is_bounded(make).await
}

/// A log that loses the first event of every replay: the kind of bug the contract exists for.
struct SkipsOnResume(RingLog);

impl EventLog for SkipsOnResume {
    fn epoch(&self) -> &Epoch {
        self.0.epoch()
    }
    fn open(&self, account: &str) {
        self.0.open(account)
    }
    fn append(&self, account: &str, draft: Draft) -> crate::model::state::Applied {
        self.0.append(account, draft)
    }
    fn subscribe(&self, account: &str, from: Option<&Position>) -> Subscription {
        let mut subscription = self.0.subscribe(account, from);
        if let Start::Replay { events, .. } = &mut subscription.start
            && !events.is_empty()
        {
            events.remove(0);
        }
        subscription
    }
    fn snapshot(&self, account: &str) -> crate::model::Snapshot {
        self.0.snapshot(account)
    }
    fn head(&self, account: &str) -> Position {
        self.0.head(account)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ring_log_keeps_the_contract() {
    let ring: &Factory = &|limits| Arc::new(RingLog::new(limits));
    if let Err(failure) = check(ring).await {
        panic!("the ring log breaks the contract: {failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_skips_an_event_on_resume_fails_the_contract() {
    let broken: &Factory = &|limits| Arc::new(SkipsOnResume(RingLog::new(limits)));
    let failure = check(broken).await.expect_err("the broken log must fail");
    assert_eq!(
        failure,
        "resumed after 4, replayed [6, 7, 8, 9, 10] (after 4)"
    );
}
