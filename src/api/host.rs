//! The `Host` check of an open gateway: with no API keys, only requests that name a loopback
//! host (`localhost`, `127.0.0.0/8`, `[::1]`) are served, so a web page that rebinds its own
//! DNS name to 127.0.0.1 cannot reach the gateway from a browser (it would send
//! `Host: evil.example`). Gateways with keys or tokens serve any host: they are the check there.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;

/// Whether `authority` (`host[:port]`) names a loopback host.
pub fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    host
                } else {
                    authority
                }
            }),
    };
    let host = host.trim_end_matches('.');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Answers 421 to a request of an open gateway whose `Host` (or HTTP/2 `:authority`) is not
/// a loopback name.
pub async fn check(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if app.auth_required() {
        return next.run(request).await;
    }
    let authority = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match authority {
        Some(authority) if is_loopback_authority(&authority) => next.run(request).await,
        _ => ApiError::HostNotAllowed.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_authority;

    #[test]
    fn loopback_names_with_and_without_ports() {
        for yes in [
            "localhost",
            "LOCALHOST:8080",
            "127.0.0.1",
            "127.1.2.3:9",
            "[::1]:8080",
            "[::1]",
            "localhost.",
        ] {
            assert!(is_loopback_authority(yes), "{yes}");
        }
        for no in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:80",
            "",
            "127.0.0.1.evil:80",
            "[::2]:1",
        ] {
            assert!(!is_loopback_authority(no), "{no}");
        }
    }
}
