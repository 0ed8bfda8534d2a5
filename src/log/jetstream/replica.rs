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
use crate::log::ring::Gap;

/// How long the consumer may deliver nothing before the journal is asked whether it holds
/// messages the consumer missed.
const STALL_CHECK: Duration = Duration::from_secs(1);

/// What `/readyz` says while the journal does not answer.
const NOT_ANSWERING: &str = "not answering (NATS electing a leader?)";

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
    let mut gap_seen_at = None;
    loop {
        let consumed = tokio::select! {
            consumed = consume(&cluster, &replica, &progress, &mut next, &mut gap_seen_at) => consumed,
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

/// One ordered consumer's life, from `next` (0: the oldest message held). A gap (messages
/// the consumer skipped, seen by the chain headers) ends it and the next one reads again
/// from the gap; a gap seen twice at the same message is accepted (the journal lost them).
async fn consume(
    cluster: &Cluster,
    replica: &RingLog,
    progress: &watch::Sender<Progress>,
    next: &mut u64,
    gap_seen_at: &mut Option<u64>,
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
    tracing::info!(from = *next, "journal consumer started");
    loop {
        let message = match tokio::time::timeout(STALL_CHECK, messages.next()).await {
            Ok(Some(message)) => message.map_err(|e| format!("consumer: {e}"))?,
            Ok(None) => return Err("the consumer ended".into()),
            Err(_) => {
                // Quiet: fine, unless the journal holds messages this consumer has not
                // delivered (a consumer lost with a nats-server, not yet noticed), or the
                // journal does not answer (NATS electing a leader): then not ready.
                let info = tokio::time::timeout(STALL_CHECK, cluster.stream.get_info()).await;
                let Ok(Ok(info)) = info else {
                    progress.send_modify(|p| p.trouble = Some(NOT_ANSWERING.into()));
                    continue;
                };
                progress.send_if_modified(|p| {
                    let was = p.trouble.as_deref() == Some(NOT_ANSWERING);
                    if was {
                        p.trouble = None;
                    }
                    was
                });
                if info.state.last_sequence >= *next && *next > 0 {
                    crate::cluster::metrics::replica_stall();
                    return Err(format!("stalled before message {next}"));
                }
                continue;
            }
        };
        let (seq, pending) = match message.info() {
            Ok(info) => (info.stream_sequence, info.pending),
            Err(error) => return Err(format!("message without stream info: {error}")),
        };
        let accept_gap = *gap_seen_at == Some(seq);
        if let Err(gap) = apply(cluster, replica, seq, &message, accept_gap) {
            crate::cluster::metrics::replica_gap();
            *gap_seen_at = Some(seq);
            *next = gap.after + 1;
            return Err(format!(
                "messages after {} missed (seen at {seq}); reading again",
                gap.after
            ));
        }
        *next = seq + 1;
        progress.send_modify(|p| {
            p.applied = seq;
            p.trouble = None;
            if pending == 0 {
                // Nothing more to read: current, even if the stream's last message at
                // start was one this consumer never sees.
                p.start_target = p.start_target.min(seq);
            }
        });
    }
}

fn apply(
    cluster: &Cluster,
    replica: &RingLog,
    seq: u64,
    message: &async_nats::Message,
    accept_gap: bool,
) -> Result<(), Gap> {
    let Some(account) = cluster.names.account_of(message.subject.as_str()) else {
        return Ok(());
    };
    match wire::read(seq, message.headers.as_ref(), &message.payload) {
        Ok(replicated) => replica.replicate(account, replicated, accept_gap),
        Err(error) => {
            crate::cluster::metrics::journal_skipped();
            tracing::warn!(%account, seq, %error, "journal message skipped: unreadable");
            Ok(())
        }
    }
}
