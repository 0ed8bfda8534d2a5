//! Consumer auth: API keys, each a name, a secret and the public ids it may see (`*` for
//! all), and tokens (`jwt`: short-lived JWTs whose `accounts` claim is their scope). Either
//! is presented as `Authorization: Bearer <secret>`, or, for EventSource which cannot set
//! headers, `?access_token=<secret>` (kept out of logs) or the token cookie (`--jwt-cookie`).
//! A credential is tried as an API key first, then, if it has a JWT's shape, as a token. No
//! credential: 401; an account outside the scope answers exactly as an unknown one (404), so
//! a caller cannot probe which ids exist beyond its scope. Demo mode on loopback may run open.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use super::error::ApiError;
use super::state::AppState;
use crate::account::Account;

/// Which accounts a key may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    All,
    Ids(HashSet<String>),
}

impl Scope {
    pub fn allows(&self, public_id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Ids(ids) => ids.contains(public_id),
        }
    }
}

/// One consumer's key. Only the SHA-256 of its secret is kept: presented secrets are
/// hashed and compared with every key's hash in constant time.
#[derive(Clone)]
pub struct ApiKey {
    pub name: String,
    secret_hash: [u8; 32],
    pub scope: Scope,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("name", &self.name)
            .field("secret", &"[SHA-256 only]")
            .field("scope", &self.scope)
            .finish()
    }
}

/// The keys, and whether they are enforced.
#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    keys: Vec<ApiKey>,
}

/// Why a key definition was refused; never carries the secret.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("an API key must be NAME:SECRET:IDS (IDS: comma-separated public ids, or *)")]
    Shape,
    #[error("API key names are 1-40 of a-z, A-Z, 0-9, - and _")]
    Name,
    #[error("the API key `{0}` has an empty secret")]
    EmptySecret(String),
    #[error("the API key `{0}` is defined twice")]
    Duplicate(String),
}

impl ApiKeys {
    /// Parses `name:secret:id,id` (or `name:secret:*`) definitions.
    pub fn parse<'a>(definitions: impl IntoIterator<Item = &'a str>) -> Result<Self, KeyError> {
        let mut keys: Vec<ApiKey> = Vec::new();
        for definition in definitions
            .into_iter()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            let mut parts = definition.splitn(3, ':');
            let (Some(name), Some(secret), Some(ids)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(KeyError::Shape);
            };
            if !crate::account::registry::valid_alias(name) {
                return Err(KeyError::Name);
            }
            if secret.is_empty() {
                return Err(KeyError::EmptySecret(name.into()));
            }
            if keys.iter().any(|k| k.name == name) {
                return Err(KeyError::Duplicate(name.into()));
            }
            let scope = if ids.trim() == "*" {
                Scope::All
            } else {
                Scope::Ids(
                    ids.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                )
            };
            keys.push(ApiKey {
                name: name.into(),
                secret_hash: hash(secret.as_bytes()),
                scope,
            });
        }
        Ok(Self { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn keys(&self) -> &[ApiKey] {
        &self.keys
    }

    /// The key whose secret is `presented`. Every key's hash is compared, in constant time
    /// (`subtle`), whether or not an earlier one matched: the time taken tells nothing about
    /// which key, or how much of one, was right. Hashing first makes the comparison
    /// independent of the secrets' lengths.
    fn find(&self, presented: &str) -> Option<&ApiKey> {
        let presented = hash(presented.as_bytes());
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, key) in (0u64..).zip(&self.keys) {
            let matches = key.secret_hash.ct_eq(&presented);
            index.conditional_assign(&i, matches);
            found |= matches;
        }
        bool::from(found)
            .then(|| usize::try_from(index).ok())
            .flatten()
            .and_then(|index| self.keys.get(index))
    }
}

fn hash(secret: &[u8]) -> [u8; 32] {
    Sha256::digest(secret).into()
}

/// Who is calling, and what they may see.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's name (`open` when auth is off).
    pub name: String,
    pub scope: Scope,
    /// Whom the per-client stream limit counts: `key:<name>`, `jwt:<digest of sub>`, or
    /// `ip:<address>` when the API is open.
    pub client: String,
    /// A token's `exp` (seconds since the epoch): streams end there (`expiry`). None for API
    /// keys and the open API.
    pub expires_at: Option<u64>,
}

impl Caller {
    /// The account `public_id`, if it exists and the caller may see it; else 404 either way.
    pub fn account(&self, app: &AppState, public_id: &str) -> Result<Arc<Account>, ApiError> {
        if !self.scope.allows(public_id) {
            return Err(ApiError::UnknownAccount);
        }
        app.account(public_id)
    }

    /// Every stream the caller may see: its accounts, then the account-independent stream.
    pub fn visible_streams(&self, app: &AppState) -> Vec<Arc<Account>> {
        app.registry
            .streams()
            .into_iter()
            .filter(|a| self.scope.allows(&a.info.public_id))
            .collect()
    }

    /// Every account the caller may see, in registry order.
    pub fn visible(&self, app: &AppState) -> Vec<Arc<Account>> {
        app.registry
            .all()
            .iter()
            .filter(|a| self.scope.allows(&a.info.public_id))
            .cloned()
            .collect()
    }
}

/// The secret from `Authorization: Bearer <secret>`, else from `access_token=`, else from
/// the cookie named `cookie` (when tokens are on).
fn presented_secret(parts: &Parts, cookie: Option<&str>) -> Option<String> {
    if let Some(header) = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = header.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| token.trim().to_string());
    }
    if let Some(token) = parts
        .uri
        .query()
        .and_then(|query| form_urlencoded_value(query, "access_token"))
    {
        return Some(token);
    }
    cookie_value(&parts.headers, cookie?)
}

/// The value of the cookie `name` in any `Cookie` header.
fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

fn form_urlencoded_value(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !app.auth_required() {
            let ip = parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip().to_string())
                .unwrap_or_default();
            return Ok(Caller {
                name: "open".into(),
                scope: Scope::All,
                client: format!("ip:{ip}"),
                expires_at: None,
            });
        }
        let cookie = app.jwt.as_ref().map(|jwt| jwt.cookie.as_str());
        let secret = presented_secret(parts, cookie).ok_or(ApiError::Unauthorized)?;
        let caller = Caller::of_credential(app, &secret).await?;
        if let Some(slot) = parts.extensions.get::<super::access::KeyName>() {
            slot.set(&caller.name);
        }
        Ok(caller)
    }
}

impl Caller {
    /// The caller a presented credential makes: an API key's, else a valid token's (named
    /// `jwt` in the access log). Also checks a WebSocket's `refresh` token.
    pub async fn of_credential(app: &AppState, secret: &str) -> Result<Caller, ApiError> {
        if let Some(key) = app.keys.find(secret) {
            return Ok(Caller {
                name: key.name.clone(),
                scope: key.scope.clone(),
                client: format!("key:{}", key.name),
                expires_at: None,
            });
        }
        let verifier = match &app.jwt {
            Some(verifier) if super::jwt::looks_like_jwt(secret) => verifier,
            _ => return Err(ApiError::Unauthorized),
        };
        let grant = verifier.verify(secret).await?;
        Ok(Caller {
            name: "jwt".into(),
            scope: grant.scope,
            client: grant.client,
            expires_at: Some(grant.expires_at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_the_env_syntax_and_errors_hide_secrets() {
        let keys = ApiKeys::parse("reader:s3cret:main,ira;ops:t0ken:*".split(';')).unwrap();
        assert_eq!(keys.keys().len(), 2);
        assert_eq!(keys.find("s3cret").unwrap().name, "reader");
        assert!(keys.find("s3cret").unwrap().scope.allows("ira"));
        assert!(!keys.find("s3cret").unwrap().scope.allows("other"));
        assert_eq!(keys.find("t0ken").unwrap().scope, Scope::All);
        assert!(keys.find("s3cre").is_none());
        assert_eq!(ApiKeys::parse(["nope"]).unwrap_err(), KeyError::Shape);
        let error = ApiKeys::parse(["bad name:hunter2:*"])
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"));
        assert_eq!(
            ApiKeys::parse(["a:x:*", "a:y:*"]).unwrap_err(),
            KeyError::Duplicate("a".into())
        );
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append("cookie", "a=1; ttgw_token=x.y.z".parse().unwrap());
        headers.append("cookie", "b=2".parse().unwrap());
        assert_eq!(
            cookie_value(&headers, "ttgw_token").as_deref(),
            Some("x.y.z")
        );
        assert_eq!(cookie_value(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie_value(&headers, "ttgw"), None);
    }

    #[test]
    fn query_tokens_are_percent_decoded() {
        assert_eq!(
            form_urlencoded_value("a=1&access_token=x%2By+z", "access_token").as_deref(),
            Some("x+y z")
        );
        assert_eq!(form_urlencoded_value("a=1", "access_token"), None);
    }
}
