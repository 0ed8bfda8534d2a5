//! Hostile WebSocket clients cannot grow the gateway's memory (issue 9): twenty sockets that
//! each send a subscribe listing one account 5,000 times and never read, then twenty that
//! each announce a 15 MiB frame.
//!
//! A test binary of its own, outside `tests/api/`: it measures this process's resident
//! memory, so nothing else may run in the process; the binary holds this one test alone,
//! and the growth it sees is the gateway's (and these clients').

// The helpers of `tests/api/`; this binary uses a few of them, hence `dead_code`.
#[path = "api/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use helpers::gateway::TestGateway;
use helpers::streams::vm_rss_kib;
use helpers::ws::ws_url;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const MIB: u64 = 1 << 20;

/// This process's resident set size, in bytes.
fn rss() -> u64 {
    vm_rss_kib() * 1024
}

/// Opens a WebSocket by hand (for frames no client library would send): returns the socket
/// after the 101.
async fn raw_websocket(url: &str) -> TcpStream {
    let addr = url.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /v1/ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    tcp
}

/// Announces one masked text frame of `len` bytes and streams its payload from a small
/// buffer, stopping when the gateway closes; returns the close code it sent, if any.
async fn send_huge_frame(mut tcp: TcpStream, len: u64) -> Option<u16> {
    let mut header = vec![0x81u8, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&header).await.ok()?;
    let (mut read, mut write) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < len {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
    });
    let mut frame = [0u8; 4];
    let code = tokio::time::timeout(Duration::from_secs(10), read.read_exact(&mut frame))
        .await
        .ok()
        .and_then(Result::ok)
        .filter(|_| frame[0] == 0x88)
        .map(|_| u16::from_be_bytes([frame[2], frame[3]]));
    writer.abort();
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_duplicate_subscribes_and_huge_frames_stay_small() {
    let gw = TestGateway::start(&["--sim-rate", "5"]).await;
    let url = ws_url(&gw.url, "");
    let baseline = rss();

    // 20 sockets, each one subscribe of 5,000 copies of one id, never reading.
    let subscribe =
        json!({"op": "subscribe", "id": 1, "accounts": vec!["roth-ira"; 5_000]}).to_string();
    assert!(subscribe.len() > 50_000 && subscribe.len() < 64 * 1024);
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::text(subscribe.clone())).await.unwrap();
        sockets.push(ws);
    }
    // Deliberate: the clients never read, so nothing tells when the gateway has handled
    // their subscribes; before the fix one took well under a second to grow by 600 MB.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = rss().saturating_sub(baseline);
    println!("20 duplicate-id subscribes: RSS grew {} KiB", grown / 1024);
    assert!(grown < 64 * MIB, "RSS grew {} MiB", grown / MIB);
    for ws in &mut sockets {
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let reply: serde_json::Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
        assert_eq!(reply["type"], "error", "{reply}");
        assert_eq!(reply["code"], "too_many_accounts", "{reply}");
    }
    drop(sockets);

    // 20 sockets, each announcing a 15 MiB frame.
    let baseline = rss();
    let mut floods = Vec::new();
    for _ in 0..20 {
        let tcp = raw_websocket(&gw.url).await;
        floods.push(tokio::spawn(send_huge_frame(tcp, 15 * MIB)));
    }
    let mut codes = Vec::new();
    for flood in floods {
        codes.push(flood.await.unwrap());
    }
    let grown = rss().saturating_sub(baseline);
    println!(
        "20 frames of 15 MiB: RSS grew {} KiB; close codes {codes:?}",
        grown / 1024
    );
    assert!(grown < 64 * MIB, "RSS grew {} MiB", grown / MIB);
    assert!(
        codes.iter().all(|c| *c == Some(1009)),
        "every socket closed with 1009: {codes:?}"
    );

    // The gateway still serves.
    let (status, _) = gw.get("/v1/accounts").await;
    assert_eq!(status, 200);
    gw.stop().await;
}
