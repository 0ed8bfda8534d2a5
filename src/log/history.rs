//! The ring log's history: an account's latest published events, kept in a ring bounded by
//! count, bytes and age, so a reconnecting client can be given exactly what it missed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::published::Published;

/// The bytes all of a process's histories may hold together (`--ring-budget-bytes`), split
/// evenly over the accounts registered: each account's ring keeps at most its share (and
/// its own `--ring-max-bytes`). An even split rather than a shared pool, so an account
/// registered late (a takeover, a new account) gets its share at once instead of what busy
/// accounts left over, and the total stays under the budget (one event per account over
/// at most: the latest always stays).
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    accounts: AtomicUsize,
    held: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            accounts: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
        }
    }

    /// One more account shares the budget.
    pub fn register(&self) {
        self.accounts.fetch_add(1, Ordering::Relaxed);
    }

    /// The bytes every history holds now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// What one account's ring may hold.
    fn share(&self) -> usize {
        self.limit / self.accounts.load(Ordering::Relaxed).max(1)
    }
}

/// A ring of the latest events, bounded by count, by bytes, by age and by the process's
/// budget.
#[derive(Debug)]
pub struct History {
    ring: VecDeque<Arc<Published>>,
    capacity: usize,
    max_age: Duration,
    max_bytes: usize,
    budget: Arc<Budget>,
    /// The bytes of the events in the ring (their SSE frames, which hold everything).
    bytes: usize,
}

impl History {
    pub fn new(capacity: usize, max_age: Duration, max_bytes: usize, budget: Arc<Budget>) -> Self {
        Self {
            // Grown as events come, not reserved: at 5,000 accounts of a few events each a
            // reservation of 4,096 slots was 32 KiB per account for nothing (bench
            // `accounts-5k`, RSS per account).
            ring: VecDeque::new(),
            capacity: capacity.max(1),
            max_age,
            max_bytes,
            budget,
            bytes: 0,
        }
    }

    /// Adds the latest event; the oldest leave while the ring is over its count, its bytes
    /// (its own limit or its share of the process's budget) or its age (the latest one
    /// always stays).
    pub fn push(&mut self, event: Arc<Published>) {
        let now = event.at;
        let incoming = event.sse.len();
        while let Some(old) = self.ring.front() {
            let over = self.ring.len() >= self.capacity
                || self.bytes + incoming > self.max_bytes.min(self.budget.share())
                || now.duration_since(old.at) > self.max_age;
            if !over {
                break;
            }
            let leaving = old.sse.len();
            self.bytes -= leaving;
            self.budget.held.fetch_sub(leaving, Ordering::Relaxed);
            self.ring.pop_front();
        }
        self.bytes += incoming;
        self.budget.held.fetch_add(incoming, Ordering::Relaxed);
        self.ring.push_back(event);
    }

    /// Forgets every event: what comes next does not continue them.
    pub fn clear(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
        self.ring.clear();
        self.bytes = 0;
    }

    /// The bytes the ring holds.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every event after `seq`, or `None` when some of them already left the ring.
    /// `current` is the latest seq published.
    pub fn since(&self, seq: u64, current: u64) -> Option<Vec<Arc<Published>>> {
        if seq > current {
            return None;
        }
        if seq == current {
            return Some(Vec::new());
        }
        // Covered when the oldest event held follows `seq` or comes before it (seqs need
        // not be dense: a JetStream stream counts every account's events together).
        if seq < self.ring.front()?.prev {
            return None;
        }
        Some(self.ring.iter().filter(|e| e.seq > seq).cloned().collect())
    }

    /// Every event placed after `order` in the whole log's order, or `None` when some of
    /// them already left the ring. `current` is the order of the account's latest event.
    pub fn since_order(&self, order: u64, current: u64) -> Option<Vec<Arc<Published>>> {
        if order >= current {
            return Some(Vec::new());
        }
        // Covered when the event before the oldest one held is at or before `order`.
        if order < self.ring.front()?.prev_order {
            return None;
        }
        Some(
            self.ring
                .iter()
                .filter(|e| e.order > order)
                .cloned()
                .collect(),
        )
    }
}

impl Drop for History {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Epoch, Position};

    fn unlimited() -> Arc<Budget> {
        Arc::new(Budget::new(usize::MAX))
    }

    fn event(seq: u64) -> Arc<Published> {
        let position = Position {
            epoch: Epoch::new("e1").expect("an epoch"),
            seq,
        };
        Arc::new(Published::new(
            &position,
            seq - 1,
            "main".into(),
            "Order".into(),
            b"{}".to_vec(),
            None,
        ))
    }

    #[test]
    fn since_returns_exactly_the_missed_events_or_none() {
        let mut history = History::new(3, Duration::from_secs(60), usize::MAX, unlimited());
        for seq in 1..=5 {
            history.push(event(seq));
        }
        let seqs =
            |v: Option<Vec<Arc<Published>>>| v.map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(history.since(2, 5)), Some(vec![3, 4, 5]));
        assert_eq!(seqs(history.since(4, 5)), Some(vec![5]));
        assert_eq!(seqs(history.since(5, 5)), Some(vec![]));
        assert_eq!(seqs(history.since(1, 5)), None);
        assert_eq!(seqs(history.since(6, 5)), None);
    }

    #[test]
    fn sparse_seqs_are_covered_from_the_oldest_events_predecessor() {
        let position = |seq| Position {
            epoch: Epoch::new("e1").expect("an epoch"),
            seq,
        };
        let mut history = History::new(2, Duration::from_secs(60), usize::MAX, unlimited());
        for (prev, seq) in [(3, 10), (10, 14), (14, 20)] {
            let event = Published::new(
                &position(seq),
                prev,
                "main".into(),
                "Order".into(),
                b"{}".to_vec(),
                None,
            );
            history.push(Arc::new(event));
        }
        let seqs =
            |v: Option<Vec<Arc<Published>>>| v.map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(history.since(10, 20)), Some(vec![14, 20]));
        assert_eq!(
            seqs(history.since(12, 20)),
            Some(vec![14, 20]),
            "between two events"
        );
        assert_eq!(seqs(history.since(9, 20)), None, "event 10 left the ring");
        assert_eq!(seqs(history.since(21, 20)), None, "from the future");
    }

    #[test]
    fn old_events_leave_the_ring() {
        let mut history = History::new(100, Duration::ZERO, usize::MAX, unlimited());
        history.push(event(1));
        std::thread::sleep(Duration::from_millis(2));
        history.push(event(2));
        assert_eq!(
            history.since(0, 2).map(|v| v.len()),
            None,
            "event 1 aged out"
        );
        assert_eq!(history.since(1, 2).map(|v| v.len()), Some(1));
    }

    #[test]
    fn the_ring_keeps_within_its_byte_budget() {
        let frame = event(1).sse.len();
        let mut history = History::new(100, Duration::from_secs(60), frame * 3, unlimited());
        // Seqs of one digit, so every frame has the same size.
        for seq in 1..=9 {
            history.push(event(seq));
            assert!(history.bytes() <= frame * 3);
        }
        assert_eq!(history.since(6, 9).map(|v| v.len()), Some(3));
        assert_eq!(history.since(5, 9).map(|v| v.len()), None, "left by bytes");
        let mut tiny = History::new(100, Duration::from_secs(60), 1, unlimited());
        tiny.push(event(1));
        assert_eq!(
            tiny.since(0, 1).map(|v| v.len()),
            Some(1),
            "the latest always stays"
        );
    }

    #[test]
    fn each_account_keeps_its_share_of_the_process_budget() {
        let frame = event(1).sse.len();
        let budget = Arc::new(Budget::new(frame * 4));
        let history = || {
            budget.register();
            History::new(100, Duration::from_secs(60), usize::MAX, budget.clone())
        };
        let (mut busy, mut quiet) = (history(), history());
        quiet.push(event(1));
        for seq in 1..=9 {
            busy.push(event(seq));
        }
        assert_eq!((busy.bytes(), quiet.bytes()), (frame * 2, frame));
        for seq in 2..=5 {
            quiet.push(event(seq));
        }
        assert_eq!(quiet.bytes(), frame * 2, "its share, not what busy left");
        assert_eq!(budget.held(), frame * 4);
        let mut late = history();
        late.push(event(1));
        assert_eq!(late.bytes(), frame, "a late account gets a share at once");
        drop(quiet);
        assert_eq!(budget.held(), frame * 3);
    }
}
