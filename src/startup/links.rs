//! Startup, step "links": one streamer task per account, each handing what it learns to its
//! account through the [`AccountSink`] adapter here (the only place that knows both sides:
//! upstream/ never names an account, account/ never names upstream/).

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::accounts::Served;
use crate::account::Account;
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

/// Spawns one streamer task per served account; each ends on `shutdown`.
pub fn spawn(
    served: &Served,
    upstream: &Upstream,
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
            let link = AccountLink {
                account: Arc::new(Sink(account.clone())),
                number: number.clone(),
                rest: upstream.rest.clone(),
                tokens: upstream.tokens.clone(),
                settings: upstream.settings.clone(),
                pacer: upstream.pacer.clone(),
                // One socket carries the account-independent subscriptions: the first one.
                user: if index == 0 { user.clone() } else { None },
            };
            tokio::spawn(streamer::run(link, shutdown.clone()))
        })
        .collect()
}
