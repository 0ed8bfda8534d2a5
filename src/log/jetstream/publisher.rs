//! The leader's side of the journal: one task per led account sends its messages in order,
//! each fenced by compare-and-set on the account's last message (`Nats-Expected-Last-
//! Subject-Sequence`) and de-duplicated by `Nats-Msg-Id = <account>.<term>.<k>`, so that a
//! retry after an ambiguous failure never doubles a message and a former leader (paused,
//! partitioned) never appends after another node took over: it is deposed instead.

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::wire::Outgoing;
use crate::cluster::Cluster;
use crate::cluster::lease::{Fencer, LeaseEnd};

/// Where one led account's journal stands.
pub struct Chain {
    /// The account's latest message (event or checkpoint) in the journal.
    pub message: u64,
    /// The account's latest event.
    pub event: u64,
}

/// One led account's publisher.
pub struct Publisher {
    pub cluster: Cluster,
    pub subject: String,
    /// The lease's term (in every message id).
    pub term: u64,
    /// `<account>.<term>`: the prefix of every message id of this term.
    pub id_prefix: String,
    pub fencer: Fencer,
    /// Messages queued and not yet stored; the publisher counts them down.
    pub pending: watch::Sender<usize>,
    /// How long an append may keep failing before the lease is given up (the next leader's
    /// REST resync then covers what this one could not store).
    pub give_up_after: Duration,
}

/// What the journal's last message of the account says about a refused append.
enum Refused {
    /// Our earlier attempt landed at this seq.
    Landed(u64),
    /// A newer leader appended: this one is deposed.
    Deposed,
    /// An older term's append slipped in before its leader stopped: this term's chain is
    /// stale; it ends, and the account is led afresh from the journal.
    Stale,
}

impl Publisher {
    /// Sends every queued message in order until the queue closes or the lease ends.
    pub async fn run(self, mut queue: mpsc::Receiver<Outgoing>, mut chain: Chain) {
        let mut k: u64 = 0;
        while let Some(message) = queue.recv().await {
            k += 1;
            let id = format!("{}.{k}", self.id_prefix);
            let Some(seq) = self.append(&message, &id, &chain).await else {
                break;
            };
            chain.message = seq;
            if !message.checkpoint {
                chain.event = seq;
            }
            self.pending.send_modify(|n| *n = n.saturating_sub(1));
        }
        self.pending.send_replace(0);
    }

    /// Appends one message, retrying until it is stored, or `None` once the lease ended
    /// (deposed, fenced, or given up after failing too long).
    async fn append(&self, message: &Outgoing, id: &str, chain: &Chain) -> Option<u64> {
        let mut delay = Duration::from_millis(25);
        let failing_since = Instant::now();
        loop {
            if self.fencer.ended() {
                return None;
            }
            let headers = message.headers(id, chain.message, chain.event);
            let started = Instant::now();
            let sent = async {
                self.cluster
                    .js
                    .publish_with_headers(self.subject.clone(), headers, message.payload.clone())
                    .await?
                    .await
            };
            match sent.await {
                Ok(ack) => {
                    crate::cluster::metrics::journal_published(started.elapsed());
                    return Some(ack.sequence);
                }
                Err(error) if error.kind() == PublishErrorKind::WrongLastSequence => {
                    match self.refused(id).await {
                        Some(Refused::Landed(seq)) => return Some(seq),
                        Some(Refused::Deposed) => {
                            crate::cluster::metrics::fenced_append();
                            tracing::warn!(subject = %self.subject, "journal append refused: another node leads this account");
                            self.fencer.fence(LeaseEnd::Deposed);
                            return None;
                        }
                        Some(Refused::Stale) => {
                            tracing::warn!(subject = %self.subject, "a former leader appended after this term began; leading the account afresh");
                            self.fencer.fence(LeaseEnd::Fenced);
                            return None;
                        }
                        None => {}
                    }
                }
                Err(error) if error.kind() == PublishErrorKind::MaxPayloadExceeded => {
                    tracing::error!(subject = %self.subject, bytes = message.payload.len(), "a journal message exceeds the NATS server's max_payload; stepping down");
                    self.fencer.fence(LeaseEnd::Fenced);
                    return None;
                }
                Err(error) => {
                    crate::cluster::metrics::journal_retry();
                    tracing::debug!(%error, "journal append failed; retrying");
                }
            }
            if failing_since.elapsed() >= self.give_up_after {
                tracing::warn!(subject = %self.subject, "journal appends kept failing; stepping down");
                self.fencer.fence(LeaseEnd::Fenced);
                return None;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Why an append was refused, from the account's last message, read through the stream
    /// leader (not a direct get, which a follower may answer). `None`: could not tell.
    async fn refused(&self, id: &str) -> Option<Refused> {
        let last = self
            .cluster
            .stream
            .get_last_raw_message_by_subject(&self.subject)
            .await
            .ok()?;
        let their_id = last
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_string())
            .unwrap_or_default();
        if their_id == id {
            return Some(Refused::Landed(last.sequence));
        }
        // `<account>.<term>.<k>`
        let their_term: Option<u64> = their_id.rsplit('.').nth(1).and_then(|t| t.parse().ok());
        Some(match their_term {
            Some(term) if term < self.term => Refused::Stale,
            _ => Refused::Deposed,
        })
    }
}

/// The account's latest message in the journal (0: none), read through the stream leader.
pub async fn last_message(cluster: &Cluster, subject: &str) -> Result<u64, String> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    match cluster
        .stream
        .get_last_raw_message_by_subject(subject)
        .await
    {
        Ok(message) => Ok(message.sequence),
        Err(error) if error.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(0),
        Err(error) => Err(error.to_string()),
    }
}
