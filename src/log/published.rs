//! One published event: sequenced, masked and serialised ONCE into shared bytes (the ready SSE
//! frame; the JSON envelope and the id-less tail are views into it, so each event is stored
//! once). Every subscriber, every transport and the history share the same `Arc`.

use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use crate::model::Position;

/// One published event, shared by every subscriber as-is.
#[derive(Debug)]
pub struct Published {
    /// The account's public id.
    pub account: Arc<str>,
    pub seq: u64,
    /// The seq of the account's event before this one: `seq - 1` in the dense ring; in a
    /// JetStream log, whose seqs count the whole stream, whatever came before.
    pub prev: u64,
    /// Its place in the order every account's events are published in (one counter for the
    /// whole log: the ring's own, a JetStream stream's seq), and the account's previous
    /// event's place: what a stream over many accounts positions itself by (`feed`).
    pub order: u64,
    pub prev_order: u64,
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
        position: &Position,
        prev: u64,
        account: Arc<str>,
        kind: String,
        json: Vec<u8>,
        upstream_ms: Option<i64>,
    ) -> Self {
        let seq = position.seq;
        let id_line = format!("id: {position}\n");
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
            prev,
            order: 0,
            prev_order: 0,
            kind,
            json: sse.slice(json_at..json_at + json.len()),
            sse,
            sse_tail,
            at: Instant::now(),
            upstream_ms,
        }
    }

    /// The event at `order` in the whole log's order, the account's previous one at
    /// `prev_order`.
    pub fn ordered(mut self, order: u64, prev_order: u64) -> Self {
        self.order = order;
        self.prev_order = prev_order;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frame_is_prebuilt_and_the_tail_shares_it() {
        let position = Position {
            epoch: crate::model::Epoch::new("e1").expect("an epoch"),
            seq: 7,
        };
        let e = Published::new(
            &position,
            6,
            "main".into(),
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
