//! WebSocket clients, of the simulator's Account Streamer and of the gateway's `/v1/ws`:
//! connect (optionally with `Authorization: Bearer`), send JSON, read the next frame, text
//! or JSON message within a deadline, prove silence, read until the close; and the same
//! readers feeding the leak scan with everything they read.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::FRAME_TIMEOUT;
use super::streams::LeakScan;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The gateway's `ws://.../v1/ws` for its `http://` URL, optionally with a query string.
pub fn ws_url(http_url: &str, query: &str) -> String {
    format!("{}/v1/ws{query}", http_url.replacen("http://", "ws://", 1))
}

/// Opens a WebSocket that accepts messages up to 16 MiB, with `Authorization: Bearer`
/// when `bearer` is given; the handshake must end within [`FRAME_TIMEOUT`].
pub async fn try_connect(url: &str, bearer: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut request = url.into_client_request().expect("request");
    if let Some(secret) = bearer {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {secret}").parse().expect("header"),
        );
    }
    let config = WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    let (ws, response) = tokio::time::timeout(
        FRAME_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(request, Some(config), true),
    )
    .await
    .expect("WebSocket handshake timed out")?;
    assert_eq!(response.status(), 101);
    Ok(ws)
}

/// A WebSocket that must open.
pub async fn connect(url: &str, bearer: Option<&str>) -> Ws {
    try_connect(url, bearer).await.expect("WebSocket opens")
}

/// Sends one JSON text message.
pub async fn send_json(ws: &mut Ws, message: Value) {
    tokio::time::timeout(FRAME_TIMEOUT, ws.send(Message::text(message.to_string())))
        .await
        .expect("sending timed out")
        .expect("send");
}

/// The next raw event from the socket (message, error or end), failing after `timeout`.
pub async fn next_event(
    ws: &mut Ws,
    timeout: Duration,
) -> Option<Result<Message, tungstenite::Error>> {
    match tokio::time::timeout(timeout, ws.next()).await {
        Ok(event) => event,
        Err(_) => panic!("no frame, error or end of socket within {timeout:?}"),
    }
}

/// The next message (any kind), failing the test on timeout, error or end of socket.
pub async fn next_frame(ws: &mut Ws, timeout: Duration) -> Message {
    match next_event(ws, timeout).await {
        Some(Ok(message)) => message,
        Some(Err(error)) => panic!("socket error while waiting for a frame: {error}"),
        None => panic!("socket ended while waiting for a frame"),
    }
}

/// The next text frame's raw text (pings and pongs are skipped; anything else fails).
pub async fn next_text(ws: &mut Ws, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_frame(ws, left).await {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// The next text frame, parsed as JSON.
pub async fn next_json(ws: &mut Ws, timeout: Duration) -> Value {
    let text = next_text(ws, timeout).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}"))
}

/// Asserts that nothing arrives on the socket for `quiet` (used only to prove absence).
pub async fn assert_quiet(ws: &mut Ws, quiet: Duration) {
    if let Ok(event) = tokio::time::timeout(quiet, ws.next()).await {
        panic!("expected no frame for {quiet:?}, got {event:?}");
    }
}

/// Reads frames until the socket closes; returns the close frame and the frames before it.
pub async fn expect_close(ws: &mut Ws, timeout: Duration) -> (Message, Vec<Message>) {
    let deadline = Instant::now() + timeout;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_frame(ws, left).await {
            close @ Message::Close(_) => return (close, before),
            other => before.push(other),
        }
    }
}

/// [`next_text`], scanned for leaks.
pub async fn scanned_text(ws: &mut Ws, timeout: Duration, scan: &LeakScan) -> String {
    let text = next_text(ws, timeout).await;
    scan.scan("a WebSocket message", text.as_bytes());
    text
}

/// [`next_json`], scanned for leaks.
pub async fn scanned_json(ws: &mut Ws, timeout: Duration, scan: &LeakScan) -> Value {
    let text = scanned_text(ws, timeout, scan).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}"))
}

/// Reads text messages until the close frame, all scanned for leaks; returns the close
/// code, its reason and the texts before it (pings and pongs skipped; anything else fails).
pub async fn scanned_close(
    ws: &mut Ws,
    timeout: Duration,
    scan: &LeakScan,
) -> (u16, String, Vec<String>) {
    let (close, before) = expect_close(ws, timeout).await;
    let mut texts = Vec::new();
    for message in before {
        match message {
            Message::Text(text) => {
                scan.scan("a WebSocket message", text.as_bytes());
                texts.push(text.to_string());
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected text messages before the close, got {other:?}"),
        }
    }
    match close {
        Message::Close(Some(frame)) => {
            scan.scan("a close reason", frame.reason.as_bytes());
            (u16::from(frame.code), frame.reason.to_string(), texts)
        }
        other => panic!("expected a close frame with a code, got {other:?}"),
    }
}
