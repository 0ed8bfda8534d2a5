//! Startup, step "listen": the consumer connection budget (descriptors kept back for the
//! upstream side), plain or TLS serving through the one accept loop, and the separate
//! metrics listener.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::StartError;
use crate::api::{self, AppState};
use crate::config::TlsFiles;
use crate::serve::{ConnectionLimits, serve};

/// Binds `addr`; says which address it got (port 0 picks one).
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| StartError::Listen { addr, source })?;
    Ok((listener, bound))
}

/// Serves the API on `listener`, plain or TLS, until the shutdown signal.
pub async fn serve_api(
    listener: TcpListener,
    app: axum::Router,
    stop: watch::Receiver<bool>,
    tls: Option<&TlsFiles>,
    limits: ConnectionLimits,
) -> Result<JoinHandle<()>, StartError> {
    match tls {
        None => Ok(serve(listener, app, stop, limits, None)),
        Some(tls) => serve_tls(listener, app, stop, tls, limits).await,
    }
}

/// Descriptors kept back from consumers: per account its streamer socket, the REST pool
/// (at most `rest_connections` calls in flight), and a margin for the token requests, the
/// metrics listener, log files and DNS.
fn reserved_descriptors(accounts: usize, rest_connections: usize) -> u64 {
    (accounts + rest_connections) as u64 + 256
}

/// How many consumer connections may be open at once: the configured number, but never so
/// many that upstream sockets and REST calls could find no descriptor. The process's soft
/// descriptor limit is first raised to its hard limit.
pub fn connection_budget(
    configured: Option<usize>,
    accounts: usize,
    rest_connections: usize,
) -> usize {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    let reserved = reserved_descriptors(accounts, rest_connections);
    let available = usize::try_from(limit.saturating_sub(reserved))
        .unwrap_or(usize::MAX)
        .max(16);
    match configured {
        Some(wanted) if wanted > available => {
            tracing::warn!(
                wanted,
                available,
                descriptor_limit = limit,
                reserved,
                "--max-connections lowered: the rest of the descriptors are kept for upstream sockets and REST calls"
            );
            available
        }
        Some(wanted) => wanted,
        None => available,
    }
}

/// HTTPS with HTTP/2 and HTTP/1.1 (ALPN), with the limits of plain HTTP, until the
/// shutdown signal.
async fn serve_tls(
    listener: TcpListener,
    app: axum::Router,
    stop: watch::Receiver<bool>,
    tls: &TlsFiles,
    limits: ConnectionLimits,
) -> Result<JoinHandle<()>, StartError> {
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
        .await
        .map_err(|e| StartError::Tls(e.to_string()))?;
    // axum-server reads the PEM files and sets ALPN (h2, http/1.1); serve.rs does the rest,
    // so TLS consumers have the same limits as plain ones.
    let acceptor = tokio_rustls::TlsAcceptor::from(rustls.get_inner());
    Ok(serve(listener, app, stop, limits, Some(acceptor)))
}

/// Serves only `/metrics`, without a key, on its own listener (`--metrics-listen`).
pub async fn serve_metrics(
    addr: SocketAddr,
    state: AppState,
    stop: watch::Receiver<bool>,
    limits: ConnectionLimits,
) -> Result<SocketAddr, StartError> {
    let (listener, bound) = bind(addr).await?;
    let router = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(app): axum::extract::State<AppState>| async move {
                    api::metrics::render(&app)
                },
            ),
        )
        .with_state(state);
    let limits = ConnectionLimits {
        max_connections: 64,
        ..limits
    };
    serve(listener, router, stop, limits, None);
    Ok(bound)
}
