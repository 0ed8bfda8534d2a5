//! tastytrade's REST API as the gateway uses it: the customer's accounts, and each account's
//! baseline (balance, positions, today's orders over every page, complex orders, trading
//! status) that is re-read on every (re)connect because the streamer replays nothing.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, USER_AGENT as USER_AGENT_HEADER};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::session::TokenSource;
use super::{USER_AGENT, UpstreamError};
use crate::model::state::AccountState;
use crate::model::wire_types::as_u64;

/// One account of the customer, as `/customers/me/accounts` lists it.
#[derive(Clone, Debug)]
pub struct CustomerAccount {
    pub number: String,
    pub nickname: Option<String>,
    pub account_type: Option<String>,
    pub closed: bool,
}

/// `Retry-After`, as seconds or as an HTTP date, if present and readable. Not capped here:
/// the streamer caps what it honours (`--retry-after-cap-secs`).
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

pub struct RestClient {
    http: reqwest::Client,
    api_url: String,
    tokens: Arc<TokenSource>,
    /// Calls in flight: each holds a pooled connection, i.e. a descriptor.
    connections: Semaphore,
}

/// REST calls of one baseline read: balances, positions, live orders (one page of 200),
/// live complex orders, trading status. The attempt budget counts a baseline as these (an
/// account with more than 200 live orders makes one more call per page, uncounted).
pub const BASELINE_CALLS: u32 = 5;

impl RestClient {
    /// At most `connections` calls in flight at once (so the pool holds at most that many).
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        tokens: Arc<TokenSource>,
        connections: usize,
    ) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            tokens,
            connections: Semaphore::new(connections.max(1)),
        }
    }

    /// GETs `path` with a valid token; on 401 the token is dropped and the call made once more.
    async fn get(
        &self,
        what: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, UpstreamError> {
        for attempt in 0..2 {
            let token = self.tokens.header().await?;
            // The semaphore is never closed; a closed one would mean no calls at all.
            let _connection =
                self.connections
                    .acquire()
                    .await
                    .map_err(|_| UpstreamError::Transport {
                        what,
                        detail: "the REST client is shut".into(),
                    })?;
            let response = self
                .http
                .get(format!("{}{path}", self.api_url))
                .query(query)
                .header(USER_AGENT_HEADER, USER_AGENT)
                .header(AUTHORIZATION, token.expose_secret())
                .send()
                .await
                .map_err(|e| UpstreamError::transport(what, e))?;
            let status = response.status();
            if status == reqwest::StatusCode::UNAUTHORIZED {
                self.tokens.invalidate(&token).await;
                if attempt == 0 {
                    continue;
                }
                return Err(UpstreamError::Auth(format!(
                    "HTTP 401 to the {what} request"
                )));
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                return Err(UpstreamError::RateLimited {
                    what,
                    retry_after: retry_after(response.headers()),
                });
            }
            if !status.is_success() {
                return Err(UpstreamError::Http {
                    status: status.as_u16(),
                    what,
                });
            }
            return response
                .json::<Value>()
                .await
                .map_err(|e| UpstreamError::Body {
                    what,
                    detail: e.without_url().to_string(),
                });
        }
        unreachable!("the loop returns on its second attempt")
    }

    /// The customer's accounts.
    pub async fn accounts(&self) -> Result<Vec<CustomerAccount>, UpstreamError> {
        let body = self.get("accounts", "/customers/me/accounts", &[]).await?;
        let items = items(&body, "accounts")?;
        Ok(items
            .iter()
            .filter_map(|item| {
                let account = item.get("account")?;
                let text = |k: &str| account.get(k).and_then(Value::as_str).map(str::to_string);
                Some(CustomerAccount {
                    number: text("account-number")?,
                    nickname: text("nickname"),
                    account_type: text("account-type-name"),
                    closed: account
                        .get("is-closed")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                })
            })
            .collect())
    }

    /// The user's `external-id` (what `user-message-subscribe` takes).
    pub async fn user_external_id(&self) -> Result<String, UpstreamError> {
        let body = self.get("customer", "/customers/me", &[]).await?;
        body.pointer("/data/external-id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(UpstreamError::Body {
                what: "customer",
                detail: "no data.external-id".into(),
            })
    }

    /// Reads the whole baseline of one account.
    pub async fn baseline(&self, number: &str) -> Result<AccountState, UpstreamError> {
        let base = format!("/accounts/{number}");
        let balance = self
            .get("balances", &format!("{base}/balances"), &[])
            .await?;
        let positions = self
            .get("positions", &format!("{base}/positions"), &[])
            .await?;
        let orders = self.paged("orders", &format!("{base}/orders/live")).await?;
        let complex = self
            .get(
                "complex orders",
                &format!("{base}/complex-orders/live"),
                &[],
            )
            .await?;
        let trading = self
            .get("trading status", &format!("{base}/trading-status"), &[])
            .await?;

        Ok(AccountState::from_rest(
            balance.get("data").filter(|d| d.is_object()).cloned(),
            items(&positions, "positions")?.iter().cloned(),
            orders,
            items(&complex, "complex orders")?.iter().cloned(),
            trading.get("data").filter(|d| d.is_object()).cloned(),
        ))
    }

    /// Every item of a paginated list (`page-offset` until `total-pages`).
    async fn paged(&self, what: &'static str, path: &str) -> Result<Vec<Value>, UpstreamError> {
        let mut all = Vec::new();
        let mut page = 0u64;
        loop {
            let body = self
                .get(
                    what,
                    path,
                    &[
                        ("per-page", "200".into()),
                        ("page-offset", page.to_string()),
                    ],
                )
                .await?;
            let batch = items(&body, what)?;
            let count = batch.len();
            all.extend(batch.iter().cloned());
            let total_pages = body
                .pointer("/pagination/total-pages")
                .and_then(as_u64)
                .unwrap_or(1);
            page += 1;
            if page >= total_pages || count == 0 || page >= 1000 {
                return Ok(all);
            }
        }
    }
}

/// `data.items` of a list envelope.
fn items<'a>(body: &'a Value, what: &'static str) -> Result<&'a Vec<Value>, UpstreamError> {
    body.pointer("/data/items")
        .and_then(Value::as_array)
        .ok_or(UpstreamError::Body {
            what,
            detail: "no data.items list".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "1000000000".parse().unwrap());
        assert_eq!(
            retry_after(&headers),
            Some(Duration::from_secs(1_000_000_000))
        );
        let in_a_minute = std::time::SystemTime::now() + Duration::from_secs(60);
        headers.insert(
            RETRY_AFTER,
            httpdate::fmt_http_date(in_a_minute).parse().unwrap(),
        );
        let wait = retry_after(&headers).unwrap();
        assert!(
            (Duration::from_secs(58)..=Duration::from_secs(60)).contains(&wait),
            "{wait:?}"
        );
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }
}
