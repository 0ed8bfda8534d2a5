//! The event log's contract: what every implementation must show, written once and run
//! against each (the ring here, the JetStream log in log::jetstream's tests). Each check
//! returns what went wrong instead of panicking, so a deliberately broken log can be shown
//! to fail it. Seqs need only increase (a JetStream stream's are not dense per account), so
//! the checks follow the events' own content: append n is order n, and the state after n
//! appends holds n orders.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::json;

use super::{Draft, Ended, EventLog, Ordered, RingLimits, RingLog, Since, Start, Subscription};
use crate::model::{Epoch, EventKind, Position, Source};

/// The account every check appends to; a factory opens it.
pub const ACCOUNT: &str = "main";

/// Makes a fresh, empty log with these limits, [`ACCOUNT`] opened and appendable.
pub type Factory = dyn Fn(RingLimits) -> BoxFuture<'static, Arc<dyn EventLog>>;

/// Waits until the log shows `count` appends in its snapshot (at once for the ring; a
/// journal's appends arrive through its replica).
async fn visible(log: &dyn EventLog, count: usize) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let held = log.snapshot(ACCOUNT).orders.len();
        if held == count {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{held} of {count} appends became visible within 20 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn limits(history: usize, bus: usize) -> RingLimits {
    RingLimits {
        ring_events: history,
        ring_max_age: Duration::from_secs(3600),
        ring_max_bytes: usize::MAX,
        ring_budget_bytes: usize::MAX,
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

/// Which append an event is (its order's id).
fn nth(event: &super::Published) -> u64 {
    serde_json::from_slice::<serde_json::Value>(&event.json)
        .ok()
        .and_then(|envelope| envelope["data"]["id"].as_u64())
        .unwrap_or(0)
}

/// Reads live events until append `last`, checking they continue append `from` without a
/// gap or repeat, with increasing seqs.
async fn read_through(events: &mut super::Events, from: u64, last: u64) -> Result<(), String> {
    let mut expected = from + 1;
    let mut seq = 0;
    while expected <= last {
        let next = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .map_err(|_| format!("no event {expected} within 10 s"))?
            .map_err(|e| format!("ended: {e:?}"))?;
        if nth(&next) != expected {
            return Err(format!("expected event {expected}, got {}", nth(&next)));
        }
        if next.seq <= seq {
            return Err(format!("seq {} after seq {seq}", next.seq));
        }
        seq = next.seq;
        expected += 1;
    }
    Ok(())
}

/// Subscribers that join while another thread appends get a snapshot exact at its position
/// and then every later event, gap-free.
pub async fn gap_free_under_concurrent_appends(make: &Factory) -> Result<(), String> {
    const TOTAL: u64 = 2_000;
    let log = make(limits(10_000, 4_096)).await;
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
        // Exact at its position: the first live event is the append after its orders.
        read_through(&mut events, snapshot.orders.len() as u64, TOTAL).await?;
    }
    Ok(())
}

/// A subscriber resuming after event N gets exactly N+1.. from the history, then live ones.
pub async fn resume_exactly_after_n(make: &Factory) -> Result<(), String> {
    let log = make(limits(100, 64)).await;
    let Subscription { mut events, .. } = log.subscribe(ACCOUNT, None);
    (1..=10).for_each(|n| append_order(log.as_ref(), n));
    let mut seqs = Vec::new();
    for _ in 1..=10 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .map_err(|_| "the first 10 events did not arrive")?
            .map_err(|e| format!("ended: {e:?}"))?;
        seqs.push(event.seq);
    }
    let from = Position {
        epoch: log.epoch().clone(),
        seq: seqs[3],
    };
    let Subscription { start, mut events } = log.subscribe(ACCOUNT, Some(&from));
    let Start::Replay {
        after,
        events: missed,
    } = start
    else {
        return Err("a position in the history must replay".into());
    };
    let replayed: Vec<u64> = missed.iter().map(|e| nth(e)).collect();
    if after != seqs[3] || replayed != (5..=10).collect::<Vec<_>>() {
        return Err(format!("resumed after 4, replayed {replayed:?}"));
    }
    append_order(log.as_ref(), 11);
    read_through(&mut events, 10, 11).await
}

/// The log's order carries every event once, in increasing places after the place it was
/// taken at; a resume from a place replays exactly the account's events after it, one from
/// a place past the log's gets a reset, and one at the account's latest event replays none.
pub async fn resume_exactly_after_a_place(make: &Factory) -> Result<(), String> {
    let log = make(limits(100, 64)).await;
    let Ordered { mut events, at } = log.ordered();
    (1..=6).for_each(|n| append_order(log.as_ref(), n));
    let mut places = Vec::new();
    for n in 1..=6 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .map_err(|_| "the 6 events did not arrive in the log's order")?
            .map_err(|e| format!("ended: {e:?}"))?;
        if nth(&event) != n || event.order <= places.last().copied().unwrap_or(at) {
            return Err(format!(
                "order {n} came as {} at {}",
                nth(&event),
                event.order
            ));
        }
        places.push(event.order);
    }
    let place = |order| Position {
        epoch: log.epoch().clone(),
        seq: order,
    };
    let (start, latest) = log.start(ACCOUNT, Since::Order(&place(places[1])));
    let Start::Replay { events: missed, .. } = start else {
        return Err("a place in the history must replay".into());
    };
    let replayed: Vec<u64> = missed.iter().map(|e| nth(e)).collect();
    if replayed != (3..=6).collect::<Vec<_>>() || latest != places[5] {
        return Err(format!("resumed after place 2, replayed {replayed:?}"));
    }
    match log.start(ACCOUNT, Since::Order(&place(places[5]))).0 {
        Start::Replay { events, .. } if events.is_empty() => {}
        _ => return Err("the latest place must replay nothing".into()),
    }
    match log
        .start(ACCOUNT, Since::Order(&place(places[5] + 1_000)))
        .0
    {
        Start::Reset(_) => Ok(()),
        _ => Err("a place from the future must reset".into()),
    }
}

/// Positions the log cannot serve get a reset: another epoch, one that left the history,
/// one from the future.
pub async fn reset_when_the_position_cannot_be_served(make: &Factory) -> Result<(), String> {
    let log = make(limits(5, 64)).await;
    let Subscription { mut events, .. } = log.subscribe(ACCOUNT, None);
    (1..=20).for_each(|n| append_order(log.as_ref(), n));
    let mut seqs = Vec::new();
    while seqs.len() < 20 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .map_err(|_| "the 20 events did not arrive")?
            .map_err(|e| format!("ended: {e:?}"))?;
        seqs.push(event.seq);
    }
    let epoch = log.epoch().clone();
    let other = Epoch::new("elsewhere").ok_or("an epoch")?;
    let head = log.head(ACCOUNT).seq;
    for (what, from) in [
        (
            "another epoch",
            Position {
                epoch: other,
                seq: seqs[19],
            },
        ),
        (
            "left the history",
            Position {
                epoch: epoch.clone(),
                seq: seqs[1],
            },
        ),
        (
            "from the future",
            Position {
                epoch: epoch.clone(),
                seq: head + 1_000,
            },
        ),
    ] {
        log.catch_up(ACCOUNT, &from).await;
        match log.subscribe(ACCOUNT, Some(&from)).start {
            Start::Reset(snapshot) if snapshot.seq == head && snapshot.orders.len() == 20 => {}
            Start::Reset(snapshot) => {
                return Err(format!(
                    "{what}: a reset at seq {} with {} orders, not at {head} with 20",
                    snapshot.seq,
                    snapshot.orders.len()
                ));
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
    let log = make(limits(10_000, 16)).await;
    let Subscription { start, mut events } = log.subscribe(ACCOUNT, None);
    let Start::Snapshot(_) = start else {
        return Err("expected a snapshot".into());
    };
    (1..=1_000).for_each(|n| append_order(log.as_ref(), n));
    visible(log.as_ref(), 1_000).await?;
    let mut expected = 1;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.next()).await {
            Err(_) => return Err("a slow subscriber was neither served nor ended".into()),
            Ok(Ok(event)) if nth(&event) == expected => expected += 1,
            Ok(Ok(event)) => {
                return Err(format!(
                    "silent gap: expected {expected}, got {}",
                    nth(&event)
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
    let log = make(limits(50, 64)).await;
    (1..=5_000).for_each(|n| append_order(log.as_ref(), n));
    visible(log.as_ref(), 5_000).await?;
    let at = |seq| Position {
        epoch: log.epoch().clone(),
        seq,
    };
    let Start::Snapshot(_) = log.subscribe(ACCOUNT, None).start else {
        return Err("expected a snapshot".into());
    };
    // The 50 latest events: the history's oldest one's predecessor is where they start.
    let Start::Replay { events, .. } = log
        .subscribe(ACCOUNT, Some(&at(log.head(ACCOUNT).seq - 1)))
        .start
    else {
        return Err("the latest event must replay".into());
    };
    if events.len() != 1 {
        return Err(format!("{} events after the last but one", events.len()));
    }
    let head = log.head(ACCOUNT).seq;
    let oldest_kept = match log.subscribe(ACCOUNT, Some(&at(head))).start {
        Start::Replay { .. } => find_oldest_replayable(log.as_ref(), head),
        _ => return Err("the head must replay (nothing)".into()),
    };
    let Some((from, count)) = oldest_kept else {
        return Err("no position replays".into());
    };
    if count != 50 {
        return Err(format!(
            "the history replays {count} events from {from}, not 50"
        ));
    }
    Ok(())
}

/// The oldest position that still replays, with how many events it replays (positions
/// between the head and 10,000 seqs back, newest first, until one resets).
fn find_oldest_replayable(log: &dyn EventLog, head: u64) -> Option<(u64, usize)> {
    let mut found = None;
    for seq in (head.saturating_sub(10_000)..=head).rev() {
        let from = Position {
            epoch: log.epoch().clone(),
            seq,
        };
        match log.subscribe(ACCOUNT, Some(&from)).start {
            Start::Replay { events, .. } => found = Some((seq, events.len())),
            _ => break,
        }
    }
    found
}

/// Every check, in order; the first failure is returned.
pub async fn check(make: &Factory) -> Result<(), String> {
    gap_free_under_concurrent_appends(make).await?;
    resume_exactly_after_n(make).await?;
    resume_exactly_after_a_place(make).await?;
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
    fn ordered(&self) -> Ordered {
        self.0.ordered()
    }
    fn start(&self, account: &str, since: Since<'_>) -> (Start, u64) {
        self.0.start(account, since)
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
    let ring: &Factory = &|limits| {
        let log: Arc<dyn EventLog> = Arc::new(RingLog::new(limits));
        log.open(ACCOUNT);
        Box::pin(std::future::ready(log))
    };
    if let Err(failure) = check(ring).await {
        panic!("the ring log breaks the contract: {failure}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_skips_an_event_on_resume_fails_the_contract() {
    let broken: &Factory = &|limits| {
        let log: Arc<dyn EventLog> = Arc::new(SkipsOnResume(RingLog::new(limits)));
        log.open(ACCOUNT);
        Box::pin(std::future::ready(log))
    };
    let failure = check(broken).await.expect_err("the broken log must fail");
    assert_eq!(failure, "resumed after 4, replayed [6, 7, 8, 9, 10]");
}
