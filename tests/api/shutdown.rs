//! Graceful shutdown of the real binary: with SSE and WebSocket clients connected, SIGTERM
//! ends the process within 5 s; the SSE client gets the closing comment and a clean end of
//! stream, the WebSocket client a 1001 close.

use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn sigterm_ends_streams_cleanly_and_exits_within_five_seconds() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"))
        .args(["serve", "--listen", "127.0.0.1:0", "--sim-rate", "0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .expect("start-up line")
        .unwrap()
        .unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while http
        .get(format!("{url}/readyz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
        != 200
    {
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut sse = http
        .get(format!("{url}/v1/accounts/individual/events"))
        .send()
        .await
        .unwrap()
        .bytes_stream();
    let mut head = String::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while !head.contains("event: snapshot") {
            head.push_str(&String::from_utf8_lossy(
                &sse.next().await.unwrap().unwrap(),
            ));
        }
    })
    .await
    .expect("the snapshot within 5 s");
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/v1/ws", url.replace("http://", "ws://")))
            .await
            .unwrap();
    ws.send(Message::text(
        json!({"op": "subscribe", "id": 1, "accounts": ["individual"]}).to_string(),
    ))
    .await
    .unwrap();
    let ack: Value = match tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        Message::Text(text) => serde_json::from_str(text.as_str()).unwrap(),
        other => panic!("expected the ack, got {other:?}"),
    };
    assert_eq!(ack["type"], "ack");

    let pid = child.id().expect("running");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();

    // SSE: the closing comment, then a clean end of the body.
    let mut tail = String::new();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = sse.next().await {
            tail.push_str(&String::from_utf8_lossy(
                &chunk.expect("a clean end, not a reset"),
            ));
        }
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream did not end");
    assert!(tail.contains(": gateway shutting down"), "{tail}");

    // WebSocket: close 1001.
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame within 5 s")
    .expect("a close code");
    assert_eq!(u16::from(close.code), 1001);
    assert_eq!(close.reason.as_str(), "gateway shutting down");

    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("exits within 5 s")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}
