//! The consumer listener, plain or TLS: accepts connections up to `--max-connections` (one
//! more gets `503` with `Retry-After` and is closed), gives each `--header-read-timeout-secs`
//! to send its request headers (slowloris) and a TLS client as long for its handshake, serves
//! HTTP/1.1 and HTTP/2 (h2c, or ALPN over TLS) with upgrades (WebSocket), and drains on
//! shutdown. The cap leaves the process's remaining descriptors to the upstream sockets and
//! REST calls (see `startup::listen::connection_budget`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// Limits on consumer connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Consumer connections open at once.
    pub max_connections: usize,
    /// Time a connection has to send a request's headers.
    pub header_read_timeout: Duration,
}

/// Refusals being written at once; past that, an over-limit connection is just closed.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;

const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 96\r\n\
\r\n\
{\"error\":{\"code\":\"overloaded\",\"message\":\"the gateway serves its most connections; retry later\"}}";

/// Serves `app` on `listener` (over TLS when `tls` is given) until `stop` turns true.
/// Kept whole on purpose: the connection cap, the refusal path, TLS and graceful shutdown
/// meet in this one loop, and reading it at once is how one checks that every accepted
/// socket is counted and released.
pub fn serve(
    listener: TcpListener,
    app: Router,
    mut stop: watch::Receiver<bool>,
    limits: ConnectionLimits,
    tls: Option<TlsAcceptor>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(limits.max_connections));
        let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
        let graceful = GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // EMFILE and friends: the consumers' share of descriptors is gone for
                        // now; wait a little instead of spinning.
                        tracing::warn!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = crate::shutdown::signalled(&mut stop) => break,
            };
            // Stream frames are small and must leave at once: without TCP_NODELAY, Nagle
            // holds one back until the subscriber's delayed ACK (up to 40 ms on Linux).
            let _ = tcp.set_nodelay(true);
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                crate::metrics::stream_refused("connections");
                if let Ok(slot) = refusals.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        refuse(tcp).await;
                        drop(slot);
                    });
                }
                continue;
            };
            let (builder, service, watcher) =
                (builder.clone(), service(&app, peer), graceful.watcher());
            let tls = tls.clone();
            let handshake_limit = limits.header_read_timeout;
            tokio::spawn(async move {
                match tls {
                    None => {
                        let connection =
                            builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
                        let _ = watcher.watch(connection.into_owned()).await;
                    }
                    Some(acceptor) => {
                        if let Ok(Ok(stream)) =
                            tokio::time::timeout(handshake_limit, acceptor.accept(tcp)).await
                        {
                            let connection = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service);
                            let _ = watcher.watch(connection.into_owned()).await;
                        }
                    }
                }
                drop(permit);
            });
        }
        drop(listener);
        if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("some connections were still open 5 s after shutdown began");
        }
    })
}

/// The router with the peer's address in every request (the per-client stream limit of an
/// open gateway counts by IP), as hyper's service for one connection.
fn service(
    app: &Router,
    peer: SocketAddr,
) -> TowerToHyperService<
    tower::util::MapRequest<
        Router,
        impl FnMut(Request<Incoming>) -> Request<Incoming> + Clone + use<>,
    >,
> {
    let with_peer = move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    };
    TowerToHyperService::new(tower::ServiceExt::map_request(app.clone(), with_peer))
}

/// Answers `503` with `Retry-After` to a connection over the limit, and closes it.
async fn refuse(mut tcp: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(OVERLOADED).await?;
        tcp.shutdown().await?;
        // Read what the client sent, so that closing does not reset the connection before
        // the client has read the answer.
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::OVERLOADED;

    #[test]
    fn the_overloaded_answer_has_the_length_it_says() {
        let text = std::str::from_utf8(OVERLOADED).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(body).is_ok());
    }
}
