//! The publisher: sends numbered, time-stamped events to the server under test over one
//! keep-alive connection (requests pipelined, so order is kept), either open-loop at a
//! fixed rate or closed-loop (saturation): at most `window` events ahead of the slowest
//! subscriber, so the server fans out as fast as it can without overrunning its queues.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep_until, timeout};

use crate::http::{self, Url};
use crate::track::{Shared, now_ns};

/// Which kind of publish endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// The simulator's control API: `{"events":[{"type","data"}...],"batch":true}`, which the
    /// simulator sends upstream as one Account Streamer frame.
    Sim,
    /// A plain publish URL (nchan): the event object is the body, one per request.
    Plain,
}

pub struct Plan {
    pub url: Url,
    pub kind: Kind,
    /// Events per second; 0 = closed loop.
    pub rate: f64,
    pub batch: usize,
    pub duration: Duration,
    pub max_events: u64,
    pub window: u64,
    pub payload: usize,
    /// The event type the simulator is asked to send.
    pub event_type: String,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct Outcome {
    pub sent: u64,
    pub requests: u64,
    pub errors: u64,
    pub started_ns: u64,
    pub ended_ns: u64,
    /// The closed loop stalled (a subscriber stopped taking events).
    pub stalled: bool,
}

/// Requests allowed in flight on the connection.
const IN_FLIGHT: usize = 32;

fn event(counter: u64, pad: &str) -> String {
    // The benchmark fields come first, so subscribers find them within the first bytes.
    format!(
        r#"{{"bench-n":{counter},"bench-ns":{},"account-number":"bench","pad":"{pad}"}}"#,
        now_ns()
    )
}

fn body(plan: &Plan, first: u64, count: u64, pad: &str) -> Vec<u8> {
    match plan.kind {
        Kind::Plain => event(first, pad).into_bytes(),
        Kind::Sim => {
            let mut out = String::from(r#"{"batch":true,"events":["#);
            for i in 0..count {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&format!(
                    r#"{{"type":"{}","data":{}}}"#,
                    plan.event_type,
                    event(first + i, pad)
                ));
            }
            out.push_str("]}");
            out.into_bytes()
        }
    }
}

/// Reads responses, each releasing one in-flight permit; counts non-2xx as errors.
pub async fn responses(mut read: OwnedReadHalf, permits: Arc<Semaphore>, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let head = loop {
            if let Some(end) = http::find(&buf, b"\r\n\r\n") {
                let text = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let status: u16 = text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                break Some((end + 4, status, length));
            }
            let mut chunk = [0u8; 8192];
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => break None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let Some((head_len, status, length)) = head else {
            return;
        };
        while buf.len() < head_len + length {
            let mut chunk = [0u8; 8192];
            match read.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        if !(200..300).contains(&status) && shared.errors.fetch_add(1, Ordering::Relaxed) < 3 {
            eprintln!(
                "loadgen: publish answered {status}: {}",
                String::from_utf8_lossy(&buf[head_len..head_len + length])
            );
        }
        buf.drain(..head_len + length);
        permits.add_permits(1);
    }
}

/// Publishes until the duration or the event budget is used up.
pub async fn run(plan: &Plan, shared: Arc<Shared>) -> anyhow::Result<Outcome> {
    let stream = http::connect(http::source(0, 1), plan.url.addr)
        .await
        .context("connecting the publisher")?;
    let (read, mut write) = stream.into_split();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let reader = tokio::spawn(responses(read, permits.clone(), shared.clone()));
    let pad = "x".repeat(plan.payload);
    let batch = plan.batch.max(1) as u64;
    let mut outcome = Outcome {
        started_ns: now_ns(),
        ..Outcome::default()
    };
    let start = Instant::now();
    let end = start + plan.duration;
    let mut completed = 0u64;
    let subscribers = shared.subscribers;
    while outcome.sent < plan.max_events && Instant::now() < end {
        let count = batch.min(plan.max_events - outcome.sent);
        if plan.rate > 0.0 {
            let due = start + Duration::from_secs_f64(outcome.sent as f64 / plan.rate);
            sleep_until(due.min(end)).await;
        } else {
            // Closed loop: wait until the window has room past the slowest subscriber.
            let last = outcome.sent + count;
            loop {
                while completed < outcome.sent
                    && shared.completions.take_complete(completed + 1, subscribers)
                {
                    completed += 1;
                }
                if last - completed <= plan.window {
                    break;
                }
                let notified = shared.completions.notify.notified();
                if timeout(Duration::from_secs(5), notified).await.is_err() {
                    outcome.stalled = true;
                    break;
                }
            }
            if outcome.stalled {
                break;
            }
        }
        let permit = permits.acquire().await?;
        permit.forget();
        let kind = if plan.kind == Kind::Plain { 1 } else { count };
        http::write_post(
            &mut write,
            &plan.url,
            "application/json",
            &body(plan, shared.base + outcome.sent + 1, kind, &pad),
        )
        .await
        .context("publishing")?;
        outcome.sent += kind;
        outcome.requests += 1;
    }
    // Every response back, so the server has taken every event before the drain starts.
    let all = permits.acquire_many(IN_FLIGHT as u32);
    if timeout(Duration::from_secs(10), all).await.is_err() {
        bail!("the publish endpoint stopped answering");
    }
    reader.abort();
    outcome.ended_ns = now_ns();
    Ok(outcome)
}
