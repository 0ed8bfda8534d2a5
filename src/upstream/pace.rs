//! One budget of upstream requests per second, shared by every account: each streamer
//! connection attempt (one request) and each REST baseline read (one per REST call it
//! makes) waits for its turn first. Turns are spaced by the cost of the one before
//! (`cost / N` s), measured between the real releases (a busy runtime that wakes late never
//! releases a burst), and come in the order asked: so no one-second window holds much more
//! than N requests, and after an outage 5,000 accounts wait in line instead of stampeding
//! tastytrade. Weighing a baseline by its calls is what lets N be the broker's own REST
//! limit: when the connects of a mass start are done, the baselines come back to back.
//!
//! Hand-written rather than `governor`: a fair (FIFO) async mutex held across the spacing
//! sleep is a few lines, and gives first-failed-first-back order and spacing between actual
//! releases, which a retrying rate limiter does not.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// The shared request budget.
#[derive(Debug)]
pub struct Pacer {
    spacing: Duration,
    /// When the last turn was released and how many requests it stood for; the lock
    /// queues the waiters in order.
    last_release: Mutex<Option<(Instant, u32)>>,
}

impl Pacer {
    /// At most `per_second` requests per second (at least 1).
    pub fn new(per_second: u32) -> Self {
        Self {
            spacing: Duration::from_secs(1) / per_second.max(1),
            last_release: Mutex::new(None),
        }
    }

    /// Waits for the caller's turn, which stands for `requests` upstream requests; `what`
    /// names the attempt for the metrics.
    pub async fn wait(&self, what: &'static str, requests: u32) {
        let mut last = self.last_release.lock().await;
        if let Some((previous, cost)) = *last {
            tokio::time::sleep_until(previous + self.spacing * cost).await;
        }
        *last = Some((Instant::now(), requests.max(1)));
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
                pacer.wait("test", 1).await;
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

    #[tokio::test(start_paused = true)]
    async fn a_turn_of_several_requests_holds_the_next_back_by_all_of_them() {
        let pacer = Pacer::new(10);
        let start = Instant::now();
        pacer.wait("connect", 1).await;
        pacer.wait("baseline", 5).await;
        let baseline = Instant::now() - start;
        pacer.wait("connect", 1).await;
        let after = Instant::now() - start;
        assert_eq!(baseline, Duration::from_millis(100));
        assert_eq!(after, Duration::from_millis(600), "5 requests at 10/s");
    }
}
