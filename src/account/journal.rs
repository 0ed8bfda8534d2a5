//! The journal: every published event of an account, sequenced, masked and serialised ONCE
//! into shared bytes (the ready SSE frame; the JSON envelope and the id-less tail are views
//! into it, so each event is stored once), kept in a ring bounded by count, bytes and age,
//! so a reconnecting client can be given exactly what it missed.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// One published event, shared by every subscriber as-is.
#[derive(Debug)]
pub struct Published {
    /// The account's public id.
    pub account: Arc<str>,
    pub seq: u64,
    /// The event type (`Order`, `AccountBalance`, ...), safe for SSE `event:` lines.
    pub kind: String,
    /// The JSON envelope (what WebSocket clients get, and SSE `data:`): a view into `sse`.
    pub json: Bytes,
    /// The complete SSE frame: `id: <epoch>-<seq>`, `event:`, `data:` and the blank line.
    pub sse: Bytes,
    /// The SSE frame without its `id:` line (a view into `sse`), for streams whose ids
    /// cover several accounts.
    pub sse_tail: Bytes,
    /// When it was published (the ring drops events older than its age limit).
    pub at: Instant,
    /// tastytrade's publication time (epoch ms), for the end-to-end lag metric.
    pub upstream_ms: Option<i64>,
}

impl Published {
    pub fn new(
        epoch: &str,
        account: Arc<str>,
        seq: u64,
        kind: String,
        json: Vec<u8>,
        upstream_ms: Option<i64>,
    ) -> Self {
        let id_line = format!("id: {epoch}-{seq}\n");
        let mut sse = Vec::with_capacity(id_line.len() + json.len() + kind.len() + 16);
        sse.extend_from_slice(id_line.as_bytes());
        sse.extend_from_slice(format!("event: {kind}\ndata: ").as_bytes());
        let json_at = sse.len();
        sse.extend_from_slice(&json);
        sse.extend_from_slice(b"\n\n");
        let sse = Bytes::from(sse);
        let sse_tail = sse.slice(id_line.len()..);
        Self {
            account,
            seq,
            kind,
            json: sse.slice(json_at..json_at + json.len()),
            sse,
            sse_tail,
            at: Instant::now(),
            upstream_ms,
        }
    }
}

/// A ring of the latest events, bounded by count, by bytes and by age.
#[derive(Debug)]
pub struct Journal {
    ring: VecDeque<Arc<Published>>,
    capacity: usize,
    max_age: Duration,
    max_bytes: usize,
    /// The bytes of the events in the ring (their SSE frames, which hold everything).
    bytes: usize,
}

impl Journal {
    pub fn new(capacity: usize, max_age: Duration, max_bytes: usize) -> Self {
        Self {
            ring: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
            max_age,
            max_bytes,
            bytes: 0,
        }
    }

    /// Adds the latest event; the oldest leave while the ring is over its count, its bytes
    /// (the latest one always stays) or its age.
    pub fn push(&mut self, event: Arc<Published>) {
        let now = event.at;
        let incoming = event.sse.len();
        while let Some(old) = self.ring.front() {
            let over = self.ring.len() >= self.capacity
                || self.bytes + incoming > self.max_bytes
                || now.duration_since(old.at) > self.max_age;
            if !over {
                break;
            }
            self.bytes -= old.sse.len();
            self.ring.pop_front();
        }
        self.bytes += incoming;
        self.ring.push_back(event);
    }

    /// The bytes the ring holds.
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
        let oldest = self.ring.front()?.seq;
        if seq + 1 < oldest {
            return None;
        }
        Some(self.ring.iter().filter(|e| e.seq > seq).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Arc<Published> {
        Arc::new(Published::new(
            "e1",
            "main".into(),
            seq,
            "Order".into(),
            b"{}".to_vec(),
            None,
        ))
    }

    #[test]
    fn since_returns_exactly_the_missed_events_or_none() {
        let mut journal = Journal::new(3, Duration::from_secs(60), usize::MAX);
        for seq in 1..=5 {
            journal.push(event(seq));
        }
        let seqs =
            |v: Option<Vec<Arc<Published>>>| v.map(|v| v.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(journal.since(2, 5)), Some(vec![3, 4, 5]));
        assert_eq!(seqs(journal.since(4, 5)), Some(vec![5]));
        assert_eq!(seqs(journal.since(5, 5)), Some(vec![]));
        assert_eq!(seqs(journal.since(1, 5)), None);
        assert_eq!(seqs(journal.since(6, 5)), None);
    }

    #[test]
    fn old_events_leave_the_ring() {
        let mut journal = Journal::new(100, Duration::ZERO, usize::MAX);
        journal.push(event(1));
        std::thread::sleep(Duration::from_millis(2));
        journal.push(event(2));
        assert_eq!(
            journal.since(0, 2).map(|v| v.len()),
            None,
            "event 1 aged out"
        );
        assert_eq!(journal.since(1, 2).map(|v| v.len()), Some(1));
    }

    #[test]
    fn the_ring_keeps_within_its_byte_budget() {
        let frame = event(1).sse.len();
        let mut journal = Journal::new(100, Duration::from_secs(60), frame * 3);
        // Seqs of one digit, so every frame has the same size.
        for seq in 1..=9 {
            journal.push(event(seq));
            assert!(journal.bytes() <= frame * 3);
        }
        assert_eq!(journal.since(6, 9).map(|v| v.len()), Some(3));
        assert_eq!(journal.since(5, 9).map(|v| v.len()), None, "left by bytes");
        let mut tiny = Journal::new(100, Duration::from_secs(60), 1);
        tiny.push(event(1));
        assert_eq!(
            tiny.since(0, 1).map(|v| v.len()),
            Some(1),
            "the latest always stays"
        );
    }

    #[test]
    fn sse_frame_is_prebuilt_and_the_tail_shares_it() {
        let e = Published::new(
            "e1",
            "main".into(),
            7,
            "Order".into(),
            br#"{"a":1}"#.to_vec(),
            None,
        );
        assert_eq!(&e.sse[..], b"id: e1-7\nevent: Order\ndata: {\"a\":1}\n\n");
        assert_eq!(&e.sse_tail[..], b"event: Order\ndata: {\"a\":1}\n\n");
        assert_eq!(&e.json[..], br#"{"a":1}"#);
        assert_eq!(
            e.json.as_ptr(),
            e.sse[28..].as_ptr(),
            "the envelope is a view too"
        );
        assert_eq!(
            e.sse_tail.as_ptr(),
            e.sse[9..].as_ptr(),
            "a view, not a copy"
        );
    }
}
