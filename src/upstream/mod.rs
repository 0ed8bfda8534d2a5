//! Everything that speaks tastytrade: authentication (`session`), the REST baseline (`rest`),
//! frame parsing (`wire`) and the per-account streamer connection (`streamer`). It feeds
//! accounts and knows nothing of HTTP consumers.

pub mod pace;
pub mod rest;
pub mod session;
pub mod sink;
pub mod streamer;
pub mod wire;

use std::time::Duration;

/// The `User-Agent` tastytrade requires on every REST call.
pub const USER_AGENT: &str = concat!("tastytrade-gateway/", env!("CARGO_PKG_VERSION"));

/// Why talking to tastytrade failed. Texts never carry URLs, tokens or account numbers.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("tastytrade refused the credentials ({0})")]
    Auth(String),
    #[error("tastytrade answered HTTP {status} to the {what} request")]
    Http { status: u16, what: &'static str },
    #[error("tastytrade rate-limited the {what} request")]
    RateLimited {
        what: &'static str,
        retry_after: Option<Duration>,
    },
    #[error("could not reach tastytrade for the {what} request: {detail}")]
    Transport { what: &'static str, detail: String },
    #[error("tastytrade sent an unexpected {what} body: {detail}")]
    Body { what: &'static str, detail: String },
    #[error("account streamer: {0}")]
    Streamer(String),
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
}

impl UpstreamError {
    /// A transport error, with the URL (which may hold an account number) stripped.
    pub fn transport(what: &'static str, error: reqwest::Error) -> Self {
        let error = error.without_url();
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        Self::Transport { what, detail }
    }

    /// How long tastytrade asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
