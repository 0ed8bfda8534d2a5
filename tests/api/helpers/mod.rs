//! The one set of helpers of the black-box tests: the demo accounts and the timeouts (here),
//! the simulator on its own (`sim`), the whole gateway in-process (`gateway`) or as its
//! binary (`binary`), SSE over a raw socket and the leak scan (`streams`), WebSocket
//! clients (`ws`), headless Chromium (`browser`), and turns on the shared test process
//! (`process`). Everything talks over
//! real sockets and waits for conditions with bounded deadlines.

pub mod binary;
pub mod browser;
pub mod gateway;
pub mod process;
pub mod sim;
pub mod streams;
pub mod tokens;
pub mod ws;

use std::future::Future;
use std::time::{Duration, Instant};

/// The demo customer's open individual account.
pub const INDIVIDUAL: &str = "5WT31842";
/// The demo customer's open Roth IRA.
pub const ROTH: &str = "5WU09822";
/// The demo customer's closed account.
pub const CLOSED: &str = "5WV55120";
/// The demo customer's account numbers: none may ever leave the gateway.
pub const ACCOUNT_NUMBERS: [&str; 3] = [INDIVIDUAL, ROTH, CLOSED];
/// Prefixes of the simulator's access and session tokens, and its demo credentials.
pub const SECRET_MARKERS: [&str; 4] =
    ["simat", "simst", "demo-client-secret", "demo-refresh-token"];

/// The User-Agent every well-behaved test client of the simulator sends.
pub const USER_AGENT: &str = "tastytrade-gateway-simtests/1.0";

pub const SECOND: Duration = Duration::from_secs(1);
pub const FIVE_SECONDS: Duration = Duration::from_secs(5);
/// How long any single expected frame or reply may take.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Heartbeats every 2 s and reconnect backoff capped at 1 s, so faults resolve quickly.
pub const FAST: [&str; 4] = ["--heartbeat-secs", "2", "--backoff-cap-secs", "1"];
/// An `updated-at` far in the future (2100-01-01, epoch ms), so injected orders are always
/// the newest version.
pub const FUTURE_MS: i64 = 4_102_444_800_000;

/// Polls `check` every 20 ms until it is true, failing the test after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The current time in epoch milliseconds (to bound notification timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}
