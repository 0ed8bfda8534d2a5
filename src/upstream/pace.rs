//! One budget of upstream attempts per second, shared by every account: each streamer
//! connection attempt and each REST baseline read waits for its turn first. Turns are at
//! least `1/N` s apart, measured between the real releases (a busy runtime that wakes late
//! never releases a burst), and come in the order asked: so no one-second window holds more
//! than N, and after an outage 5,000 accounts wait in line instead of stampeding tastytrade.
//!
//! Hand-written rather than `governor`: a fair (FIFO) async mutex held across the spacing
//! sleep is a few lines, and gives first-failed-first-back order and spacing between actual
//! releases, which a retrying rate limiter does not.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The shared attempt budget.
#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    /// When the last turn was released; the lock queues the waiters in order.
    last_release: Mutex<Option<Instant>>,
}

impl Pacer {
    /// At most `per_second` attempts per second (at least 1).
    pub fn new(per_second: u32) -> Self {
        Self {
            spacing: Duration::from_secs(1) / per_second.max(1),
            last_release: Mutex::new(None),
        }
    }

    /// Waits for the caller's turn; `what` names the attempt for the metrics.
    pub async fn wait(&self, what: &'static str) {
        let mut last = self.last_release.lock().await;
        if let Some(previous) = *last {
            tokio::time::sleep_until(previous + self.spacing).await;
        }
        *last = Some(Instant::now());
        drop(last);
        crate::metrics::upstream_attempt(what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn slots_are_spaced_and_in_order() {
        let pacer = std::sync::Arc::new(Pacer::new(10));
        let start = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..25 {
            let pacer = pacer.clone();
            handles.push(tokio::spawn(async move {
                pacer.wait("test").await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for handle in handles {
            times.push(handle.await.unwrap() - start);
        }
        times.sort();
        // 25 attempts at 10/s: the last one 2.4 s after the first, none closer than 100 ms.
        assert_eq!(times[24], Duration::from_millis(2400));
        assert!(
            times
                .windows(2)
                .all(|w| w[1] - w[0] >= Duration::from_millis(100))
        );
    }
}
