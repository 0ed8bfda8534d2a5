//! Startup, step "accounts": list the customer's accounts (retrying while tastytrade is
//! briefly away), register their numbers with the masker, choose the ones to serve, name them
//! with public ids, and build each [`Account`] over the event log; plus the user's own stream
//! when quote alerts, watchlists or user messages are on.

use std::sync::Arc;
use std::time::Duration;

use super::StartError;
use crate::account::registry::{USER_STREAM_ID, public_ids};
use crate::account::{Account, AccountInfo, Registry};
use crate::config::Config;
use crate::log::EventLog;
use crate::mask::{Masker, mask_number};
use crate::upstream::UpstreamError;
use crate::upstream::rest::{CustomerAccount, RestClient};
use crate::upstream::streamer;

/// The user's subscriptions, `(action, value)`, and the stream their events go to.
pub type UserStream = (Vec<(&'static str, Option<serde_json::Value>)>, Arc<Account>);

/// The accounts served, with what their streamer tasks need.
pub struct Served {
    pub registry: Arc<Registry>,
    pub masker: Arc<Masker>,
    /// Each registry account's full number, in the registry's order (for its streamer only).
    pub numbers: Vec<String>,
    /// The user's subscriptions, carried by the first account's socket.
    pub user: Option<UserStream>,
}

/// Every step of "accounts", in order.
pub async fn build(
    config: &Config,
    rest: &RestClient,
    log: &Arc<dyn EventLog>,
) -> Result<Served, StartError> {
    let listed = list_accounts(rest, config.backoff_cap)
        .await
        .map_err(StartError::Accounts)?;
    let numbers = listed
        .iter()
        .map(|a| a.number.as_str())
        .chain(config.accounts.iter().map(|c| c.number.as_str()));
    let masker = Arc::new(Masker::new(numbers.clone()));
    crate::mask::register(numbers);
    let chosen = choose(config, &listed)?;
    let naming: Vec<(Option<String>, Option<String>)> = chosen
        .iter()
        .map(|(alias, a)| (alias.clone(), a.nickname.clone()))
        .collect();
    let ids = public_ids(&naming, &masker);
    let mut accounts = Vec::new();
    let mut numbers = Vec::new();
    for ((_, listed), public_id) in chosen.into_iter().zip(ids) {
        let info = AccountInfo {
            public_id,
            masked_number: mask_number(&listed.number),
            nickname: listed.nickname.as_deref().map(|n| masker.mask_text(n)),
            account_type: listed.account_type.clone(),
        };
        accounts.push(Arc::new(Account::new(info, masker.clone(), log.clone())));
        numbers.push(listed.number);
    }
    let user = user_stream(config, rest, &masker, log).await;
    let registry = Arc::new(Registry::new(
        accounts,
        user.as_ref().map(|(_, stream)| stream.clone()),
    ));
    Ok(Served {
        registry,
        masker,
        numbers,
        user,
    })
}

/// The accounts to serve: every open one, or the ones configured (each must be listed).
fn choose(
    config: &Config,
    listed: &[CustomerAccount],
) -> Result<Vec<(Option<String>, CustomerAccount)>, StartError> {
    let chosen: Vec<_> = if config.accounts.is_empty() {
        listed
            .iter()
            .filter(|a| !a.closed)
            .map(|a| (None, a.clone()))
            .collect()
    } else {
        let mut chosen = Vec::new();
        for choice in &config.accounts {
            let found = listed
                .iter()
                .find(|a| a.number == choice.number)
                .ok_or_else(|| StartError::UnknownAccount(mask_number(&choice.number)))?;
            chosen.push((choice.alias.clone(), found.clone()));
        }
        chosen
    };
    if chosen.is_empty() {
        return Err(StartError::NoAccounts);
    }
    Ok(chosen)
}

/// Lists the customer's accounts, retrying a few times with backoff (tastytrade may be briefly away).
async fn list_accounts(
    rest: &RestClient,
    backoff_cap: Duration,
) -> Result<Vec<CustomerAccount>, UpstreamError> {
    let mut attempt = 0;
    loop {
        match rest.accounts().await {
            Ok(accounts) => return Ok(accounts),
            Err(error @ UpstreamError::Auth(_)) => return Err(error),
            Err(error) if attempt >= 4 => return Err(error),
            Err(error) => {
                let delay = error
                    .retry_after()
                    .map(|asked| asked.min(backoff_cap.max(Duration::from_secs(60))))
                    .unwrap_or_else(|| {
                        streamer::backoff(attempt, streamer::QUICK_RETRIES_FOR, backoff_cap)
                    });
                let error = crate::mask::diagnostic(&error.to_string());
                tracing::warn!(%error, "listing accounts failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

/// The account-independent stream and its subscriptions, when any is enabled.
async fn user_stream(
    config: &Config,
    rest: &RestClient,
    masker: &Arc<Masker>,
    log: &Arc<dyn EventLog>,
) -> Option<UserStream> {
    let mut actions = Vec::new();
    if config.quote_alerts {
        actions.push(("quote-alerts-subscribe", None));
    }
    if config.public_watchlists {
        actions.push(("public-watchlists-subscribe", None));
    }
    if config.user_messages {
        match rest.user_external_id().await {
            Ok(external_id) => actions.push((
                "user-message-subscribe",
                Some(serde_json::json!(external_id)),
            )),
            Err(error) => {
                let error = crate::mask::diagnostic(&error.to_string());
                tracing::warn!(%error, "user messages are off: the user's external id could not be read")
            }
        }
    }
    if actions.is_empty() {
        return None;
    }
    let info = AccountInfo {
        public_id: USER_STREAM_ID.to_string(),
        masked_number: String::new(),
        nickname: Some("quote alerts, public watchlists, user messages".into()),
        account_type: None,
    };
    let stream = Arc::new(Account::new(info, masker.clone(), log.clone()));
    stream.update_status(|s| s.state = crate::model::LinkState::Live);
    Some((actions, stream))
}
