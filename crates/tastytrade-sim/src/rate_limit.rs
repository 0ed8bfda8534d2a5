//! The REST rate limit a real broker has: a token bucket of `rate` calls per second that
//! holds one second's worth (at least one call). A call beyond it is answered 429 with
//! `Retry-After` (whole seconds, at least 1), so a gateway that starts thousands of
//! accounts must pace its baseline reads instead of stampeding.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Calls per second, refilled continuously; `None` when there is no limit.
pub struct RestRateLimit {
    rate: f64,
    bucket: Mutex<(f64, Instant)>,
}

impl RestRateLimit {
    /// A limit of `rate` calls per second; none for 0 (or anything not a positive number).
    pub fn new(rate: f64) -> Option<Self> {
        (rate.is_finite() && rate > 0.0).then(|| Self {
            rate,
            bucket: Mutex::new((rate.max(1.0), Instant::now())),
        })
    }

    /// Takes one call's token; `Err(wait)` when the bucket is empty, with how long until
    /// the next token.
    pub fn take(&self) -> Result<(), Duration> {
        let capacity = self.rate.max(1.0);
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = &mut *bucket;
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_worth_then_refusals_with_a_wait() {
        let limit = RestRateLimit::new(5.0).expect("a limit");
        for call in 0..5 {
            assert!(limit.take().is_ok(), "call {call} is within the burst");
        }
        let wait = limit.take().expect_err("the sixth waits");
        assert!(wait <= Duration::from_millis(200), "{wait:?}");
        assert_eq!(retry_after_secs(wait), 1);
        assert!(RestRateLimit::new(0.0).is_none());
        assert!(RestRateLimit::new(f64::NAN).is_none());
    }
}
