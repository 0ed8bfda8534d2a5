//! When a stream opened with a token must end: at the token's `exp`. The leeway
//! (`--jwt-leeway-secs`) is for clock skew when a token is presented; a stream never
//! outlives its token by it. SSE ends its stream there
//! (the feed's deadline, `feed`); a WebSocket is told `--jwt-expiry-notice-secs` before
//! and closed there unless it sent a fresh token (`ws`). Converts the token's wall-clock
//! `exp` into the runtime's clock once, when the stream opens or its token is replaced.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Close code of a WebSocket whose token expired (4000-4999: the application's own).
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;

/// The furthest a stream's end is put, in seconds (a year): a token's `exp` may be any
/// number up to 2^64, and the runtime's clock cannot count that far.
const FURTHEST_SECS: u64 = 365 * 86_400;

/// The runtime instant `exp` falls on (now, if already past; at most a year ahead).
pub fn deadline(expires_at: u64) -> Instant {
    // One reading of the wall clock: `exp` has whole-second resolution, so the stream ends
    // at `exp` counted from this very instant, not up to a second after it (two readings
    // could straddle a second boundary).
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let left = expires_at.saturating_sub(since_epoch.as_secs());
    let into_second = Duration::from_nanos(u64::from(since_epoch.subsec_nanos()));
    let left = Duration::from_secs(left.min(FURTHEST_SECS)).saturating_sub(into_second);
    Instant::now() + left
}

/// A WebSocket's token clock: the notice before the end, then the end.
pub struct TokenClock {
    pub expires_at: u64,
    notice: Option<Pin<Box<Sleep>>>,
    end: Pin<Box<Sleep>>,
}

/// What the clock says.
pub enum Tick {
    /// Tell the client its token expires soon.
    Expiring,
    /// The token expired: close.
    Expired,
}

impl TokenClock {
    pub fn new(expires_at: u64, notice: Duration) -> Self {
        let end = deadline(expires_at);
        let notice_at = end.checked_sub(notice).unwrap_or(end).max(Instant::now());
        Self {
            expires_at,
            notice: Some(Box::pin(tokio::time::sleep_until(notice_at))),
            end: Box::pin(tokio::time::sleep_until(end)),
        }
    }

    /// When the token expires, on the runtime's clock.
    pub fn end(&self) -> Instant {
        self.end.deadline()
    }

    /// The next tick (cancel-safe); the notice comes once. Checks the time itself first:
    /// a timer may fire up to a millisecond late, and a busy stream must not use it.
    pub async fn tick(&mut self) -> Tick {
        if Instant::now() >= self.end() {
            return Tick::Expired;
        }
        if let Some(notice) = self.notice.as_mut() {
            tokio::select! {
                biased;
                _ = self.end.as_mut() => return Tick::Expired,
                _ = notice.as_mut() => {
                    self.notice = None;
                    return Tick::Expiring;
                }
            }
        }
        self.end.as_mut().await;
        Tick::Expired
    }
}

/// Waits for the clock's next tick, or forever without one (API keys, open API).
pub async fn next_tick(clock: &mut Option<TokenClock>) -> Tick {
    match clock {
        Some(clock) => clock.tick().await,
        None => std::future::pending().await,
    }
}
