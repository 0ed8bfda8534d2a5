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
    /// `<account>.<term>`: the prefix of every message id of this term.
    pub id_prefix: String,
    pub fencer: Fencer,
    /// True while nothing is queued or in flight (a hand-over waits for it).
    pub idle: watch::Sender<bool>,
}

impl Publisher {
    /// Sends every queued message in order until the queue closes or the lease ends.
    pub async fn run(self, mut queue: mpsc::Receiver<Outgoing>, mut chain: Chain) {
        let mut k: u64 = 0;
        while let Some(message) = queue.recv().await {
            let _ = self.idle.send(false);
            k += 1;
            let id = format!("{}.{k}", self.id_prefix);
            let Some(seq) = self.append(&message, &id, &chain).await else {
                break;
            };
            chain.message = seq;
            if !message.checkpoint {
                chain.event = seq;
            }
            if queue.is_empty() {
                let _ = self.idle.send(true);
            }
        }
        let _ = self.idle.send(true);
    }

    /// Appends one message, retrying until it is stored, or `None` once deposed or fenced.
    async fn append(&self, message: &Outgoing, id: &str, chain: &Chain) -> Option<u64> {
        let mut delay = Duration::from_millis(25);
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
                    match self.landed_earlier(id).await {
                        Some(true) => return self.last_seq().await,
                        Some(false) => {
                            crate::cluster::metrics::fenced_append();
                            tracing::warn!(subject = %self.subject, "journal append refused: another node leads this account");
                            self.fencer.fence(LeaseEnd::Deposed);
                            return None;
                        }
                        None => {}
                    }
                }
                Err(error) => {
                    crate::cluster::metrics::journal_retry();
                    tracing::debug!(%error, "journal append failed; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    /// Whether the account's last message is ours (an earlier attempt landed, and the
    /// server answered the retry with "wrong last sequence" instead of "duplicate"). Read
    /// through the stream leader, not a direct get, which a follower may answer.
    async fn landed_earlier(&self, id: &str) -> Option<bool> {
        let last = self
            .cluster
            .stream
            .get_last_raw_message_by_subject(&self.subject)
            .await
            .ok()?;
        let ours = last
            .headers
            .get("Nats-Msg-Id")
            .is_some_and(|v| v.as_str() == id);
        Some(ours)
    }

    async fn last_seq(&self) -> Option<u64> {
        self.cluster
            .stream
            .get_last_raw_message_by_subject(&self.subject)
            .await
            .ok()
            .map(|m| m.sequence)
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
