//! What one subscriber saw: every benchmark event carries a counter and a nanosecond send
//! stamp; the tracker checks the counters arrive exactly once and in order (gaps and
//! duplicates fail the run) and keeps each event's latency.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use memchr::memmem;
use tokio::sync::Notify;

/// Latency samples kept per subscriber, so a long run's memory stays bounded.
const MAX_SAMPLES: usize = 1 << 20;

/// Wall-clock nanoseconds: the publisher and subscribers may be different processes.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}

/// Shared by the publisher and every subscriber of one run.
pub struct Shared {
    /// Counters of this run are `base + 1 ..`; anything else (an earlier run's event in a
    /// snapshot or a buffer) is not ours and is ignored.
    pub base: u64,
    pub subscribers: usize,
    pub ready: AtomicUsize,
    pub errors: AtomicU64,
    /// Streams the server cut (a slow or lagging consumer) that resumed with their last id.
    pub resumes: AtomicU64,
    /// Deliveries so far, over every subscriber.
    pub delivered: AtomicU64,
    /// For the closed-loop (saturation) mode: how many subscribers have each event, in a ring.
    pub completions: Completions,
}

/// Counts, per event, the subscribers that have it, so the publisher can keep a bounded
/// window of events in flight (fan-out at the server's own pace, never overrunning queues).
pub struct Completions {
    counts: Vec<AtomicU32>,
    pub notify: Notify,
}

impl Completions {
    pub fn new(window: usize) -> Self {
        Self {
            counts: (0..window.max(1) * 2).map(|_| AtomicU32::new(0)).collect(),
            notify: Notify::new(),
        }
    }

    fn slot(&self, index: u64) -> &AtomicU32 {
        &self.counts[(index % self.counts.len() as u64) as usize]
    }

    /// One subscriber has event `index`; wakes the publisher when it was the last one.
    fn record(&self, index: u64, subscribers: usize) {
        if self.slot(index).fetch_add(1, Ordering::AcqRel) + 1 == subscribers as u32 {
            self.notify.notify_one();
        }
    }

    /// True (and the slot recycled) if every subscriber has event `index`.
    pub fn take_complete(&self, index: u64, subscribers: usize) -> bool {
        let slot = self.slot(index);
        if slot.load(Ordering::Acquire) >= subscribers as u32 {
            slot.store(0, Ordering::Release);
            true
        } else {
            false
        }
    }
}

impl Shared {
    pub fn new(base: u64, subscribers: usize, window: usize) -> Arc<Self> {
        Arc::new(Self {
            base,
            subscribers,
            ready: AtomicUsize::new(0),
            errors: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            completions: Completions::new(window),
        })
    }
}

/// One subscriber's tally.
#[derive(Default)]
pub struct Tracker {
    /// The next event index expected (1-based within the run).
    pub next: u64,
    pub received: u64,
    pub gaps: u64,
    pub duplicates: u64,
    pub latencies_us: Vec<u32>,
    /// When the last event of the run arrived.
    pub last_at_ns: u64,
}

impl Tracker {
    pub fn new() -> Self {
        Self {
            next: 1,
            ..Self::default()
        }
    }

    /// Looks for a benchmark event in one SSE block or WebSocket message.
    pub fn on_message(&mut self, message: &[u8], now: u64, shared: &Shared) {
        let Some((counter, stamp)) = scan(message) else {
            return;
        };
        if counter <= shared.base {
            return;
        }
        let index = counter - shared.base;
        if index < self.next {
            self.duplicates += 1;
            return;
        }
        if index > self.next {
            self.gaps += index - self.next;
        }
        self.next = index + 1;
        self.received += 1;
        self.last_at_ns = now;
        shared.delivered.fetch_add(1, Ordering::Relaxed);
        shared.completions.record(index, shared.subscribers);
        if self.latencies_us.len() < MAX_SAMPLES {
            let us = now.saturating_sub(stamp) / 1_000;
            self.latencies_us.push(us.min(u32::MAX as u64) as u32);
        }
    }

    /// Events of the run that never came (after the drain), counted as gaps.
    pub fn finish(&mut self, sent: u64) {
        if sent + 1 > self.next {
            self.gaps += sent + 1 - self.next;
            self.next = sent + 1;
        }
    }
}

/// What a set of subscribers (one process's) saw, summed; what a child process sends its
/// parent.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub connected: usize,
    pub errors: u64,
    #[serde(default)]
    pub resumes: u64,
    pub delivered: u64,
    pub gaps: u64,
    pub duplicates: u64,
    pub last_at_ns: u64,
    /// Latency histogram: quantised microseconds -> count.
    pub latency_us: BTreeMap<u32, u64>,
    /// A child's CPU seconds over its whole life (connecting included).
    pub cpu_secs: f64,
}

impl Tally {
    pub fn add(&mut self, tracker: &Tracker) {
        self.delivered += tracker.received;
        self.gaps += tracker.gaps;
        self.duplicates += tracker.duplicates;
        self.last_at_ns = self.last_at_ns.max(tracker.last_at_ns);
        for &us in &tracker.latencies_us {
            *self
                .latency_us
                .entry(crate::report::quantize(us))
                .or_insert(0) += 1;
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.connected += other.connected;
        self.errors += other.errors;
        self.resumes += other.resumes;
        self.delivered += other.delivered;
        self.gaps += other.gaps;
        self.duplicates += other.duplicates;
        self.last_at_ns = self.last_at_ns.max(other.last_at_ns);
        self.cpu_secs += other.cpu_secs;
        for (us, count) in other.latency_us {
            *self.latency_us.entry(us).or_insert(0) += count;
        }
    }
}

/// `(counter, send stamp)` of a benchmark event, if `message` holds one.
pub fn scan(message: &[u8]) -> Option<(u64, u64)> {
    let counter = number_after(message, b"\"bench-n\":")?;
    let stamp = number_after(message, b"\"bench-ns\":")?;
    Some((counter, stamp))
}

pub fn number_after(haystack: &[u8], key: &[u8]) -> Option<u64> {
    let at = memmem::find(haystack, key)? + key.len();
    let digits = haystack[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0u64, |n, b| n * 10 + (b - b'0') as u64);
    Some(digits)
}

/// Splits complete SSE blocks (ending in a blank line) off `pending` and hands each to `f`;
/// a partial block stays for the next read. `event: snapshot`/`reset` blocks are skipped:
/// they hold state, not events (an earlier run's counter may sit in the balance).
pub fn sse_blocks(pending: &mut Vec<u8>, f: impl FnMut(&[u8])) {
    sse_blocks_seen(pending, f, |_| {});
}

/// As [`sse_blocks`], and `seen` gets every complete block, snapshots included (for the
/// last `id:` and the closing comment of a cut stream).
pub fn sse_blocks_seen(
    pending: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
    mut seen: impl FnMut(&[u8]),
) {
    let mut start = 0;
    while let Some(end) = memmem::find(&pending[start..], b"\n\n") {
        let block = &pending[start..start + end];
        seen(block);
        let state = memmem::find(block, b"event: snapshot").is_some()
            || memmem::find(block, b"event: reset").is_some();
        if !state {
            f(block);
        }
        start += end + 2;
    }
    pending.drain(..start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_counter_and_stamp() {
        let m = br#"id: e-3\nevent: AccountBalance\ndata: {"data":{"bench-n":17,"bench-ns":123456789,"x":1}}"#;
        assert_eq!(scan(m), Some((17, 123456789)));
        assert_eq!(scan(b"data: {}"), None);
    }

    #[test]
    fn counts_gaps_and_duplicates() {
        let shared = Shared::new(100, 1, 8);
        let mut t = Tracker::new();
        for n in [101, 102, 102, 105, 106] {
            let m = format!(r#"{{"bench-n":{n},"bench-ns":0}}"#);
            t.on_message(m.as_bytes(), 0, &shared);
        }
        t.finish(8);
        assert_eq!((t.received, t.duplicates, t.gaps), (4, 1, 2 + 2));
    }

    #[test]
    fn splits_blocks_and_skips_snapshots() {
        let mut pending =
            b"retry: 1\nevent: snapshot\ndata: {}\n\nid: 1\ndata: a\n\nid: 2\nda".to_vec();
        let mut seen = Vec::new();
        sse_blocks(&mut pending, |b| seen.push(b.to_vec()));
        assert_eq!(seen, vec![b"id: 1\ndata: a".to_vec()]);
        assert_eq!(pending, b"id: 2\nda");
    }
}
