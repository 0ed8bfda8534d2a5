//! The journal: every published event of an account, sequenced, masked and serialised ONCE
//! into shared bytes (the JSON envelope and the ready SSE frame), kept in a bounded ring so
//! a reconnecting client can be given exactly what it missed.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;

/// One published event, shared by every subscriber as-is.
#[derive(Debug)]
pub struct Published {
    pub seq: u64,
    /// The event type (`Order`, `AccountBalance`, ...), safe for SSE `event:` lines.
    pub kind: String,
    /// The JSON envelope (what WebSocket clients get, and SSE `data:`).
    pub json: Bytes,
    /// The complete SSE frame: `id:`, `event:`, `data:` and the blank line.
    pub sse: Bytes,
}

impl Published {
    pub fn new(epoch: &str, seq: u64, kind: String, json: Vec<u8>) -> Self {
        let mut sse = Vec::with_capacity(json.len() + kind.len() + 48);
        sse.extend_from_slice(format!("id: {epoch}-{seq}\nevent: {kind}\ndata: ").as_bytes());
        sse.extend_from_slice(&json);
        sse.extend_from_slice(b"\n\n");
        Self {
            seq,
            kind,
            json: Bytes::from(json),
            sse: Bytes::from(sse),
        }
    }
}

/// A bounded ring of the latest events.
#[derive(Debug)]
pub struct Journal {
    ring: VecDeque<Arc<Published>>,
    capacity: usize,
}

impl Journal {
    pub fn new(capacity: usize) -> Self {
        Self {
            ring: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
        }
    }

    pub fn push(&mut self, event: Arc<Published>) {
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(event);
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
        Arc::new(Published::new("e1", seq, "Order".into(), b"{}".to_vec()))
    }

    #[test]
    fn since_returns_exactly_the_missed_events_or_none() {
        let mut journal = Journal::new(3);
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
    fn sse_frame_is_prebuilt() {
        let e = Published::new("e1", 7, "Order".into(), br#"{"a":1}"#.to_vec());
        assert_eq!(&e.sse[..], b"id: e1-7\nevent: Order\ndata: {\"a\":1}\n\n");
    }
}
