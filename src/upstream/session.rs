//! Authentication against tastytrade: the OAuth refresh-token grant (current) or the legacy
//! session login. Hands out a currently valid token in the form both REST `Authorization`
//! and the streamer's `auth-token` want (`Bearer <access>` for OAuth, raw for sessions),
//! refreshing it before expiry; the token lives in a `secrecy` type and is never logged.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{USER_AGENT, UpstreamError};

/// How we log in.
#[derive(Clone)]
pub enum Credentials {
    OAuth {
        client_secret: SecretString,
        refresh_token: SecretString,
    },
    Session {
        login: String,
        password: SecretString,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OAuth { .. } => f.write_str("Credentials::OAuth([REDACTED])"),
            Self::Session { .. } => f.write_str("Credentials::Session([REDACTED])"),
        }
    }
}

struct Token {
    /// The value as sent: `Bearer <access token>` or the raw session token.
    header: SecretString,
    /// When to mint a new one (before tastytrade's expiry).
    refresh_at: Instant,
}

/// A shared source of valid tokens; one refresh at a time, never a storm.
pub struct TokenSource {
    http: reqwest::Client,
    api_url: String,
    credentials: Credentials,
    margin: Duration,
    current: Mutex<Option<Token>>,
}

/// When to refresh a token that lives `ttl`: `margin` before expiry, or at half its life
/// when it lives shorter than twice the margin.
pub fn refresh_after(ttl: Duration, margin: Duration) -> Duration {
    if ttl < margin * 2 {
        ttl / 2
    } else {
        ttl - margin
    }
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        api_url: &str,
        credentials: Credentials,
        margin: Duration,
    ) -> Self {
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            credentials,
            margin,
            current: Mutex::new(None),
        }
    }

    /// A currently valid token, minting one when there is none or it is due.
    pub async fn header(&self) -> Result<SecretString, UpstreamError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref()
            && Instant::now() < token.refresh_at
        {
            return Ok(token.header.clone());
        }
        let token = self.mint().await?;
        let header = token.header.clone();
        *current = Some(token);
        Ok(header)
    }

    /// Forgets `used` if it is still the current token (tastytrade rejected it).
    pub async fn invalidate(&self, used: &SecretString) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|t| t.header.expose_secret() == used.expose_secret())
        {
            *current = None;
        }
    }

    async fn mint(&self) -> Result<Token, UpstreamError> {
        match &self.credentials {
            Credentials::OAuth {
                client_secret,
                refresh_token,
            } => self.oauth_token(client_secret, refresh_token).await,
            Credentials::Session { login, password } => self.session_token(login, password).await,
        }
    }

    /// An access token from the OAuth refresh-token grant.
    async fn oauth_token(
        &self,
        client_secret: &SecretString,
        refresh_token: &SecretString,
    ) -> Result<Token, UpstreamError> {
        let body = json!({
            "grant_type": "refresh_token",
            "refresh_token": refresh_token.expose_secret(),
            "client_secret": client_secret.expose_secret(),
        });
        let reply = self.post("oauth token", "/oauth/token", &body).await?;
        let access = reply
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(UpstreamError::Body {
                what: "oauth token",
                detail: "no access_token".into(),
            })?;
        let ttl = reply
            .get("expires_in")
            .and_then(crate::model::wire_types::as_u64)
            .unwrap_or(900);
        let ttl = clamp_ttl(Duration::from_secs(ttl));
        tracing::info!(
            expires_in_secs = ttl.as_secs(),
            "obtained an OAuth access token"
        );
        Ok(Token {
            header: SecretString::from(format!("Bearer {access}")),
            refresh_at: Instant::now() + refresh_after(ttl, self.margin),
        })
    }

    /// A session token from a login.
    async fn session_token(
        &self,
        login: &str,
        password: &SecretString,
    ) -> Result<Token, UpstreamError> {
        let body =
            json!({"login": login, "password": password.expose_secret(), "remember-me": true});
        let reply = self.post("session login", "/sessions", &body).await?;
        let data = reply.get("data").unwrap_or(&Value::Null);
        let token = data
            .get("session-token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(UpstreamError::Body {
                what: "session login",
                detail: "no session-token".into(),
            })?;
        let ttl = data
            .get("session-expiration")
            .and_then(crate::model::wire_types::epoch_millis)
            .map(|ms| ms.saturating_sub(chrono::Utc::now().timestamp_millis()))
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
            .map(clamp_ttl)
            .unwrap_or(Duration::from_secs(24 * 3600));
        tracing::info!(expires_in_secs = ttl.as_secs(), "obtained a session token");
        Ok(Token {
            header: SecretString::from(token.to_string()),
            refresh_at: Instant::now() + refresh_after(ttl, self.margin),
        })
    }

    async fn post(
        &self,
        what: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<Value, UpstreamError> {
        let response = self
            .http
            .post(format!("{}{path}", self.api_url))
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .json(body)
            .send()
            .await
            .map_err(|e| UpstreamError::transport(what, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED
            || status == reqwest::StatusCode::FORBIDDEN
            || status == reqwest::StatusCode::BAD_REQUEST
        {
            return Err(UpstreamError::Auth(format!(
                "HTTP {} from the {what} request",
                status.as_u16()
            )));
        }
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(UpstreamError::RateLimited {
                what,
                retry_after: super::rest::retry_after(response.headers()),
            });
        }
        if !status.is_success() {
            return Err(UpstreamError::Http {
                status: status.as_u16(),
                what,
            });
        }
        response
            .json::<Value>()
            .await
            .map_err(|e| UpstreamError::Body {
                what,
                detail: e.without_url().to_string(),
            })
    }
}

/// A token lifetime as tastytrade states it, clamped to 1 s .. 30 days: a huge or zero
/// `expires_in` must neither overflow `Instant` arithmetic nor make a refresh storm.
fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.clamp(Duration::from_secs(1), Duration::from_secs(30 * 86_400))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_before_expiry_and_at_half_life_for_short_tokens() {
        assert_eq!(
            clamp_ttl(Duration::from_secs(u64::MAX)),
            Duration::from_secs(30 * 86_400)
        );
        assert_eq!(clamp_ttl(Duration::ZERO), Duration::from_secs(1));
        let margin = Duration::from_secs(60);
        assert_eq!(
            refresh_after(Duration::from_secs(900), margin),
            Duration::from_secs(840)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(100), margin),
            Duration::from_secs(50)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(4), margin),
            Duration::from_secs(2)
        );
    }
}
