//! Startup, step "links": one streamer task per account, each handing what it learns to its
//! account through the [`AccountSink`] adapter here (the only place that knows both sides:
//! upstream/ never names an account, account/ never names upstream/).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::accounts::Served;
use crate::account::Account;
use crate::cluster::lease::Leases;
use crate::log::jetstream::JetStreamLog;
use crate::model::state::{AccountState, Applied};
use crate::model::{EventKind, Source, UpstreamStatus};
use crate::upstream::pace::Pacer;
use crate::upstream::rest::RestClient;
use crate::upstream::session::TokenSource;
use crate::upstream::sink::AccountSink;
use crate::upstream::streamer::{self, AccountLink, StreamerSettings, UserSubscriptions};

/// An account as its streamer sees it.
struct Sink(Arc<Account>);

impl AccountSink for Sink {
    fn public_id(&self) -> &str {
        &self.0.info.public_id
    }

    fn event(&self, kind: EventKind, data: Value, timestamp: Option<i64>) -> Applied {
        self.0.ingest(kind, data, timestamp, Source::Stream)
    }

    fn baseline(&self, baseline: AccountState) -> usize {
        self.0.resync(baseline)
    }

    fn status(&self, change: &mut dyn FnMut(&mut UpstreamStatus)) {
        self.0.update_status(change)
    }
}

/// What every link shares.
pub struct Upstream {
    pub rest: Arc<RestClient>,
    pub tokens: Arc<TokenSource>,
    pub settings: StreamerSettings,
    pub pacer: Arc<Pacer>,
}

/// In a cluster: the leases that say where each account's socket runs, and the log that
/// leads an account while its lease holds.
pub struct Leading {
    pub leases: Arc<Leases>,
    pub log: Arc<JetStreamLog>,
}

/// Spawns one streamer task per served account; each ends on `shutdown`. In a cluster each
/// runs only while this node holds the account's lease.
pub fn spawn(
    served: &Served,
    upstream: &Upstream,
    leading: Option<&Leading>,
    shutdown: &watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let user = served
        .user
        .as_ref()
        .map(|(actions, stream)| UserSubscriptions {
            actions: actions.clone(),
            stream: Arc::new(Sink(stream.clone())),
        });
    served
        .registry
        .all()
        .iter()
        .zip(&served.numbers)
        .enumerate()
        .map(|(index, (account, number))| {
            // One socket carries the account-independent subscriptions: the first one.
            let user = if index == 0 { user.clone() } else { None };
            let (sink, number) = (Arc::new(Sink(account.clone())), number.clone());
            let (rest, tokens) = (upstream.rest.clone(), upstream.tokens.clone());
            let (settings, pacer) = (upstream.settings.clone(), upstream.pacer.clone());
            let link = move || AccountLink {
                account: sink.clone(),
                number: number.clone(),
                rest: rest.clone(),
                tokens: tokens.clone(),
                settings: settings.clone(),
                pacer: pacer.clone(),
                user: user.clone(),
            };
            match leading {
                None => tokio::spawn(streamer::run(link(), shutdown.clone())),
                Some(leading) => {
                    let mut ids = vec![account.info.public_id.clone()];
                    if index == 0
                        && let Some((_, stream)) = &served.user
                    {
                        ids.push(stream.info.public_id.clone());
                    }
                    let link: Box<dyn Fn() -> AccountLink + Send> = Box::new(link);
                    tokio::spawn(while_held(
                        leading.leases.clone(),
                        leading.log.clone(),
                        ids,
                        link,
                        shutdown.clone(),
                    ))
                }
            }
        })
        .collect()
}

/// How long a hand-over lets queued appends land before the lease is released.
const HANDOVER_FLUSH: Duration = Duration::from_millis(500);
/// How long a streamer may take to close its socket once told to stop.
const STREAMER_STOP: Duration = Duration::from_secs(3);

/// Runs an account's streamer only while this node holds its lease: takes the lease,
/// leads the account in the log, runs the socket until the lease ends or the gateway stops,
/// then steps down and releases the lease (so the next node takes it at once).
async fn while_held(
    leases: Arc<Leases>,
    log: Arc<JetStreamLog>,
    ids: Vec<String>,
    link: Box<dyn Fn() -> AccountLink + Send>,
    mut shutdown: watch::Receiver<bool>,
) {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let account = ids[0];
    loop {
        let guard = tokio::select! {
            guard = leases.acquire(account) => guard,
            _ = crate::shutdown::signalled(&mut shutdown) => return,
        };
        if let Err(error) = log.lead(&ids, &guard).await {
            tracing::warn!(%account, %error, "could not take the account over; releasing its lease");
            log.step_down(&ids, Duration::ZERO).await;
            guard.release().await;
            continue;
        }
        tracing::info!(%account, term = guard.term, "leading the account");
        let (stop, stop_rx) = watch::channel(false);
        let mut ended = guard.ended();
        let mut handover = guard.handover();
        let mut global = shutdown.clone();
        let mut streamer = tokio::spawn(streamer::run(link(), stop_rx));
        tokio::select! {
            _ = ended.wait_for(Option::is_some) => {}
            _ = handover.wait_for(|asked| *asked) => {}
            _ = crate::shutdown::signalled(&mut global) => {}
        }
        let _ = stop.send(true);
        if tokio::time::timeout(STREAMER_STOP, &mut streamer)
            .await
            .is_err()
        {
            // Stuck in a phase that does not watch `stop` (a connect, a baseline read): it
            // must not outlive the lease, or two sockets would hold the account.
            streamer.abort();
        }
        // While the lease holds (a hand-over, a shutdown), what is queued lands first.
        log.step_down(&ids, HANDOVER_FLUSH).await;
        guard.release().await;
        if *shutdown.borrow() {
            return;
        }
    }
}
