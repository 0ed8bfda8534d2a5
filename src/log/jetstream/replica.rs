//! Every node's copy of the journal: one ordered consumer over every account's subject feeds
//! the node-local ring (states, histories, live buses) with the journal's own seqs, so SSE,
//! WebSocket and REST snapshots are served on every node exactly as on one. The consumer
//! starts from the oldest message the stream still holds (the resume horizon) and, when it
//! breaks, continues after the last message it applied.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures::StreamExt;
use tokio::sync::watch;

use super::wire;
use crate::cluster::Cluster;
use crate::log::RingLog;

/// How far the replica is.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// The latest stream seq applied.
    pub applied: u64,
    /// The stream's last seq when the replica started: it is current once past it.
    pub start_target: u64,
    /// Why the consumer is not running, if it is not.
    pub trouble: Option<String>,
}

/// Applies the journal to `replica` until `shutdown`.
pub async fn run(
    cluster: Cluster,
    replica: Arc<RingLog>,
    progress: watch::Sender<Progress>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut next: u64 = 0;
    loop {
        let consumed = tokio::select! {
            consumed = consume(&cluster, &replica, &progress, &mut next) => consumed,
            _ = shutdown.changed() => return,
        };
        if let Err(trouble) = consumed {
            tracing::warn!(%trouble, "journal consumer stopped; starting it again");
            progress.send_modify(|p| p.trouble = Some(trouble));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One ordered consumer's life, from `next` (0: the oldest message held).
async fn consume(
    cluster: &Cluster,
    replica: &RingLog,
    progress: &watch::Sender<Progress>,
    next: &mut u64,
) -> Result<(), String> {
    let deliver_policy = match *next {
        0 => DeliverPolicy::All,
        start_sequence => DeliverPolicy::ByStartSequence { start_sequence },
    };
    let config = pull::OrderedConfig {
        filter_subject: cluster.names.all_subjects(),
        deliver_policy,
        ..Default::default()
    };
    let consumer = cluster
        .stream
        .create_consumer(config)
        .await
        .map_err(|e| format!("creating the consumer: {e}"))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| format!("reading the consumer: {e}"))?;
    progress.send_modify(|p| p.trouble = None);
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| format!("consumer: {e}"))?;
        let (seq, pending) = match message.info() {
            Ok(info) => (info.stream_sequence, info.pending),
            Err(error) => return Err(format!("message without stream info: {error}")),
        };
        apply(cluster, replica, seq, &message);
        *next = seq + 1;
        progress.send_modify(|p| {
            p.applied = seq;
            if pending == 0 {
                // Nothing more to read: current, even if the stream's last message at
                // start was one this consumer never sees.
                p.start_target = p.start_target.min(seq);
            }
        });
    }
    Err("the consumer ended".into())
}

fn apply(cluster: &Cluster, replica: &RingLog, seq: u64, message: &async_nats::Message) {
    let Some(account) = cluster.names.account_of(message.subject.as_str()) else {
        return;
    };
    match wire::read(seq, message.headers.as_ref(), &message.payload) {
        Ok(replicated) => replica.replicate(account, replicated),
        Err(error) => {
            crate::cluster::metrics::journal_skipped();
            tracing::warn!(%account, seq, %error, "journal message skipped: unreadable");
        }
    }
}
