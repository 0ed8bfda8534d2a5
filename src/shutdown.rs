//! One shutdown signal for the whole gateway: a watch channel that turns `true` once. Every
//! long-lived task (streamer links, streams, the accept loop) holds a receiver and ends when
//! it turns; the binary's signal handler or a test's handle holds the sender.

use tokio::sync::watch;

/// The sender (turn it with `send(true)`) and the first receiver.
pub fn channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

/// Resolves once the gateway is shutting down (at once if it already is).
pub async fn signalled(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}
