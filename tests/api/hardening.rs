//! Hardening (issue 9), black-box over real sockets: keys whenever real money is behind,
//! the `Host` check of an open gateway and the WebSocket `Origin` check, byte-identical
//! answers for unknown and out-of-scope ids, request ids that are not echoed when unfit,
//! /metrics behind a key or on its own listener, header-read timeouts against slowloris,
//! and a connection cap that leaves descriptors to the upstream.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::binary::{all_live, spawn_command};
use crate::helpers::gateway::TestGateway;
use crate::helpers::{INDIVIDUAL, wait_until};
use futures::StreamExt;
use serde_json::json;
use tastytrade_gateway::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const GATEWAY: &str = env!("CARGO_BIN_EXE_tastytrade-gateway");

/// Sends one raw HTTP/1.1 request and returns the answer (head and a body of
/// `content-length` bytes) as text.
async fn raw_request(url: &str, request: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut answer = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|n| body.len() >= n) {
                return text;
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
            Ok(Ok(0)) => return text,
            Ok(Ok(n)) => answer.extend_from_slice(&chunk[..n]),
            Ok(Err(error)) => panic!("read: {error}"),
            Err(_) => panic!("no complete answer within 5 s: {text:?}"),
        }
    }
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"))
}

fn body_of(answer: &str) -> &str {
    answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

#[tokio::test]
async fn keys_are_required_whenever_the_upstream_is_not_the_simulator() {
    let output = tokio::process::Command::new(GATEWAY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-url",
            "http://127.0.0.1:9",
            "--streamer-url",
            "ws://127.0.0.1:9/streamer",
        ])
        .env_remove("TTGW_API_KEYS")
        .output()
        .await
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("api-keys") && stderr.contains("not the embedded simulator"),
        "{stderr}"
    );
    for upstream in ["sandbox", "production"] {
        let output = tokio::process::Command::new(GATEWAY)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                upstream,
                "--client-secret",
                "x",
                "--refresh-token",
                "y",
            ])
            .env_remove("TTGW_API_KEYS")
            .output()
            .await
            .expect("the binary runs");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{upstream} without keys must refuse to start"
        );
    }
    // The explicit opt-out (for a benchmark against a local simulator) passes validation.
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: tastytrade_gateway::config::ServeArgs,
    }
    let args = [
        "gw",
        "--api-url",
        "http://127.0.0.1:9",
        "--streamer-url",
        "ws://127.0.0.1:9/s",
        "--insecure-open-api",
    ];
    let cli = <Cli as clap::Parser>::try_parse_from(args).unwrap();
    assert!(Config::from_args(cli.serve).is_ok());
    let args = ["gw", "--listen", "0.0.0.0:0", "--insecure-open-api"];
    let cli = <Cli as clap::Parser>::try_parse_from(args).unwrap();
    assert!(
        Config::from_args(cli.serve).is_err(),
        "beyond loopback, keys stay required"
    );
}

#[tokio::test]
async fn an_open_gateway_serves_loopback_host_names_only() {
    let gw = TestGateway::start(&[]).await;
    let port = gw.gateway.addr.port();
    for host in [
        "evil.example",
        "evil.example:80",
        "localhost.evil.example",
        "10.0.0.1",
    ] {
        let answer = raw_request(
            &gw.url,
            &format!("GET /v1/accounts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status_of(&answer), 421, "Host: {host}: {answer}");
        assert!(body_of(&answer).contains("host_not_allowed"), "{answer}");
        assert!(
            !answer.contains("individual"),
            "nothing of the accounts: {answer}"
        );
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "[::1]".to_string(),
    ] {
        let answer = raw_request(
            &gw.url,
            &format!("GET /v1/accounts HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert_eq!(status_of(&answer), 200, "Host: {host}");
    }
    gw.stop().await;

    let keyed = TestGateway::start_as(&["--api-key", "ops:k3y:*"], Some("k3y")).await;
    let answer = raw_request(&keyed.url, "GET /v1/accounts HTTP/1.1\r\nHost: gateway.example.com\r\nAuthorization: Bearer k3y\r\nConnection: close\r\n\r\n").await;
    assert_eq!(
        status_of(&answer),
        200,
        "a keyed gateway serves any host name: {answer}"
    );
    keyed.stop().await;
}

/// Opens a WebSocket with `Origin` set; returns the handshake's HTTP status.
async fn ws_status(url: &str, origin: &str) -> u16 {
    let mut request = format!("{}/v1/ws", url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake failed: {other}"),
    }
}

#[tokio::test]
async fn websocket_origins_come_from_the_allowlist_not_the_host_header() {
    let gw = TestGateway::start(&["--cors-origins", "https://app.example.com"]).await;
    let own = gw.url.clone();
    assert_eq!(
        ws_status(&gw.url, &own).await,
        101,
        "the gateway's own loopback page"
    );
    assert_eq!(
        ws_status(&gw.url, "https://app.example.com").await,
        101,
        "a listed origin"
    );
    assert_eq!(ws_status(&gw.url, "http://evil.example").await, 403);
    // DNS rebinding: Host and Origin both name the attacker. The Host check answers first.
    let answer = raw_request(&gw.url, "GET /v1/ws HTTP/1.1\r\nHost: evil.example:80\r\nOrigin: http://evil.example:80\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await;
    assert_eq!(status_of(&answer), 421, "{answer}");
    gw.stop().await;

    let keyed = TestGateway::start_as(&["--api-key", "ops:k3y:*"], Some("k3y")).await;
    let mut request = format!("{}/v1/ws", keyed.url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example:80".parse().unwrap());
    request
        .headers_mut()
        .insert("host", "evil.example:80".parse().unwrap());
    request
        .headers_mut()
        .insert("authorization", "Bearer k3y".parse().unwrap());
    let status = match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        other => panic!(
            "a same-Host foreign origin must be refused, got {:?}",
            other.map(|(_, r)| r.status())
        ),
    };
    assert_eq!(status, 403);
    keyed.stop().await;
}

#[tokio::test]
async fn out_of_scope_ids_answer_exactly_like_unknown_ones() {
    let gw =
        TestGateway::start_as(&["--api-key", "reader:s3cret:individual"], Some("s3cret")).await;
    for (outside, unknown) in [
        (
            "/v1/accounts/roth-ira/snapshot",
            "/v1/accounts/no-such/snapshot",
        ),
        (
            "/v1/accounts/roth-ira/balance",
            "/v1/accounts/no-such/balance",
        ),
        (
            "/v1/accounts/roth-ira/events",
            "/v1/accounts/no-such/events",
        ),
        (
            "/v1/accounts/roth-ira/positions",
            "/v1/accounts/no-such/positions",
        ),
    ] {
        let get = |path: &str| {
            let request = gw
                .http
                .get(format!("{}{path}", gw.url))
                .bearer_auth("s3cret");
            async move {
                let response = request.send().await.unwrap();
                (response.status().as_u16(), response.bytes().await.unwrap())
            }
        };
        let (a, b) = (get(outside).await, get(unknown).await);
        assert_eq!(a.0, 404, "{outside}");
        assert_eq!(a, b, "{outside} and {unknown} must answer alike");
    }
    // The same over WebSocket.
    let mut request = format!("{}/v1/ws", gw.url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", "Bearer s3cret".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut replies = Vec::new();
    for id in ["roth-ira", "no-such"] {
        use futures::SinkExt;
        let op = json!({"op": "subscribe", "accounts": [id]}).to_string();
        ws.send(tokio_tungstenite::tungstenite::Message::text(op))
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        replies.push(reply.into_text().unwrap().to_string());
    }
    assert_eq!(replies[0], replies[1]);
    assert!(replies[0].contains("unknown_account"), "{}", replies[0]);
    gw.stop().await;
}

#[tokio::test]
async fn unfit_request_ids_are_replaced_and_every_route_takes_access_token() {
    let gw = TestGateway::start_as(&["--api-key", "ops:k3y:*"], Some("k3y")).await;
    let huge = "r".repeat(100_000);
    let ctl = "with\tcontrol";
    let long = "x".repeat(129);
    let fine = "req-0123456789";
    for (sent, echoed) in [
        (huge.as_str(), false),
        (long.as_str(), false),
        (ctl, false),
        (fine, true),
    ] {
        let response = gw
            .http
            .get(format!("{}/v1/accounts?access_token=k3y", gw.url))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "access_token= on /v1/accounts");
        let back = response
            .headers()
            .get("x-request-id")
            .expect("a request id")
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(
            back == sent,
            echoed,
            "sent {} bytes, got back {back}",
            sent.len()
        );
        assert!(back.len() <= 128);
    }
    for path in [
        "/v1/accounts/individual/snapshot",
        "/v1/accounts/individual/orders",
        "/healthz",
        "/readyz",
    ] {
        let status = gw
            .http
            .get(format!("{}{path}?access_token=k3y", gw.url))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{path} with access_token=: {status}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn metrics_can_need_a_key_or_live_on_their_own_listener() {
    let gw = TestGateway::start_as(
        &[
            "--api-key",
            "ops:k3y:*",
            "--metrics-require-key",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        Some("k3y"),
    )
    .await;
    let without = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), 401);
    let with = gw
        .http
        .get(format!("{}/metrics", gw.url))
        .bearer_auth("k3y")
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), 200);
    let own = gw.gateway.metrics_addr.expect("a metrics listener");
    let scraped = gw
        .http
        .get(format!("http://{own}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.unwrap();
    assert!(text.contains("ttgw_"), "{text}");
    let other = gw
        .http
        .get(format!("http://{own}/v1/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the metrics listener serves /metrics only"
    );
    gw.stop().await;
}

#[tokio::test]
async fn slowloris_connections_are_closed_and_others_are_served_meanwhile() {
    let gw = TestGateway::start(&["--header-read-timeout-secs", "2"]).await;
    let addr = gw.gateway.addr;
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        slow.push(tokio::spawn(async move {
            let mut tcp = tcp;
            let head = b"GET /v1/accounts HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
            if tcp.write_all(head).await.is_err() {
                return Instant::now();
            }
            let mut byte = [0u8; 1];
            loop {
                // One byte a second; the gateway ends the connection (read gives 0 or fails).
                tokio::select! {
                    read = tcp.read(&mut byte) => if !matches!(read, Ok(n) if n > 0) { return Instant::now() },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if tcp.write_all(b"a").await.is_err() { return Instant::now() }
                    }
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    let http = reqwest::Client::new();
    for _ in 0..10 {
        let started = Instant::now();
        let response = http
            .get(format!("{}/healthz", gw.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        latencies.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    println!(
        "with 500 slowloris connections open: /healthz min {:?}, max {:?}",
        latencies[0], latencies[9]
    );
    assert!(latencies[9] < Duration::from_millis(50), "{latencies:?}");
    let mut closed_after = Vec::new();
    for task in slow {
        let closed = tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("closed by the header timeout")
            .unwrap();
        closed_after.push(closed - opened);
    }
    closed_after.sort();
    println!(
        "slowloris connections closed after {:?} .. {:?}",
        closed_after[0], closed_after[499]
    );
    assert!(
        closed_after[499] < Duration::from_secs(6),
        "all closed within the 2 s timeout + slack"
    );
    gw.stop().await;
}

/// The gateway binary under a descriptor limit of `nofile`, on the embedded simulator:
/// returns the child, the gateway's URL and the simulator's URL.
async fn gateway_with_descriptors(nofile: u32) -> (tokio::process::Child, String, String) {
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" --listen 127.0.0.1:0 --sim-rate 0 --heartbeat-secs 2 --sse-keepalive-secs 1"))
        .arg(GATEWAY);
    let spawned = spawn_command(command, Stdio::null()).await;
    let sim = spawned.sim.expect("demo mode");
    let mut stdout = spawned.stdout;
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    (spawned.child, spawned.url, sim)
}

#[tokio::test]
async fn consumers_at_the_connection_cap_leave_descriptors_to_the_upstream() {
    // 400 descriptors: 290 are kept back (1 per account, 32 for the REST pool, 256), so
    // 110 consumer connections; 50 more are refused (under the 64 refusals in flight).
    let (_child, url, sim) = gateway_with_descriptors(400).await;
    let http = reqwest::Client::new();
    wait_until("accounts live", Duration::from_secs(15), || {
        all_live(&http, &url)
    })
    .await;
    let addr = url.trim_start_matches("http://").to_string();
    let mut streams = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for _ in 0..160 {
        let mut tcp = TcpStream::connect(&addr).await.expect("connect");
        tcp.write_all(b"GET /v1/accounts/individual/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut head))
            .await
            .expect("an answer")
            .unwrap();
        match &head[9..12] {
            b"200" => served += 1,
            b"503" => refused += 1,
            other => panic!("unexpected status {}", String::from_utf8_lossy(other)),
        }
        streams.push(tcp);
    }
    println!("under a 400-descriptor limit: {served} streams served, {refused} refused with 503");
    assert!(
        refused > 0 && served >= 100,
        "served {served}, refused {refused}"
    );
    // Every consumer slot is taken; tastytrade drops the upstream sockets.
    let before: serde_json::Value = http
        .get(format!("{sim}/sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.post(format!("{sim}/sim/faults/drop"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    wait_until(
        "both streamer sockets back",
        Duration::from_secs(10),
        || async {
            let stats: serde_json::Value = http
                .get(format!("{sim}/sim/stats"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            stats["streamer_connections"].as_u64()
                >= before["streamer_connections"].as_u64().map(|n| n + 2)
                && stats["streamer_open"] == 2
        },
    )
    .await;
    drop(streams.drain(..10));
    wait_until("accounts live again", Duration::from_secs(10), || {
        all_live(&http, &url)
    })
    .await;
}

/// What must never leave the gateway: the simulator's account numbers in any case, a
/// number of an account the gateway does not serve, and the simulator's tokens.
fn leaks_in(text: &str) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    [
        "5wt31842",
        "5wu09822",
        "5wv55120",
        "9zz12345",
        "simat",
        "simst",
        "demo-client-secret",
        "demo-refresh-token",
    ]
    .into_iter()
    .filter(|needle| lower.contains(needle))
    .map(|needle| {
        let at = lower.find(needle).unwrap_or(0);
        let around = &text.as_bytes()[at.saturating_sub(80)..(at + 80).min(text.len())];
        format!("`{needle}` in …{}…", String::from_utf8_lossy(around))
    })
    .collect()
}

#[tokio::test]
async fn account_numbers_injected_everywhere_never_leave_at_debug_level() {
    let log_path = std::env::temp_dir().join(format!("ttgw-leak-{}.log", std::process::id()));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = tokio::process::Command::new(GATEWAY);
    command
        .args([
            "--listen",
            "127.0.0.1:0",
            "--sim-rate",
            "5",
            "--heartbeat-secs",
            "2",
        ])
        .env("RUST_LOG", "debug");
    let spawned = spawn_command(command, Stdio::from(log)).await;
    let (mut child, url, mut lines) = (spawned.child, spawned.url, spawned.stdout);
    let sim = spawned.sim.expect("demo mode");
    let mut stdout = spawned.banner.join("\n");
    let http = reqwest::Client::new();
    let mut received = String::new();
    let live = || all_live(&http, &url);
    // Streamer handshakes the simulator has seen: grows when the gateway reconnects.
    let handshakes = || async {
        let stats: serde_json::Value = http
            .get(format!("{sim}/sim/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        stats["streamer_connections"].as_u64().unwrap_or(0)
    };
    wait_until("accounts live", Duration::from_secs(15), live).await;
    let mut sse = http
        .get(format!("{url}/v1/events"))
        .send()
        .await
        .unwrap()
        .bytes_stream();

    let inject = |account: &str, body: serde_json::Value| {
        let request = http
            .post(format!("{sim}/sim/accounts/{account}/events"))
            .json(&body);
        async move { assert!(request.send().await.unwrap().status().is_success()) }
    };
    // Event data: lower case, another customer's number, a number as a key.
    inject("5WT31842", json!({"type": "AccountBalance", "data": {"account-number": "5wt31842", "cash-balance": "1.00", "note": "from 9ZZ12345 and 5wu09822", "5Wt31842": 1, "updated-at": "2030-01-01T00:00:00.000Z"}})).await;
    // A shape that breaks the typed model: serde errors quote the value.
    inject("5WT31842", json!({"type": "Order", "data": {"id": "5WU09822", "size": {"x": "5wt31842"}, "status": ["9ZZ12345"], "legs": "5WV55120"}})).await;
    inject("5WT31842", json!({"type": "CurrentPosition", "data": {"symbol": ["5WT31842"], "quantity": "9zz12345"}})).await;
    // Malformed frames and an unknown type named after an account.
    for raw in [
        r#"{"type":"Order","data":{"id":"5WT31842","account-number":"5wu09822""#,
        r#"{"type":"5WT31842-Thing","data":{"account-number":"9ZZ12345"},"timestamp":1}"#,
        r#"{"results":[{"type":"Order","data":"5wv55120"}, 5WT31842]}"#,
    ] {
        inject("5WT31842", json!({"raw": raw})).await;
    }
    // An error reply of tastytrade that names accounts, then a close reason that does.
    let before = handshakes().await;
    inject("5WT31842", json!({"raw": r#"{"action":"heartbeat","status":"error","message":"token for ***1842 / 5WU09822 and 9zz12345","request-id":1}"#})).await;
    wait_until(
        "a reconnect after the error reply",
        Duration::from_secs(15),
        || async { handshakes().await > before },
    )
    .await;
    wait_until(
        "accounts live after the error reply",
        Duration::from_secs(15),
        live,
    )
    .await;
    let before = handshakes().await;
    http.post(format!("{sim}/sim/faults/close"))
        .json(&json!({"reason": "account 5WU09822 closed by 9ZZ12345"}))
        .send()
        .await
        .unwrap();
    wait_until(
        "a reconnect after the close",
        Duration::from_secs(15),
        || async { handshakes().await > before + 1 },
    )
    .await;
    wait_until(
        "accounts live after the close",
        Duration::from_secs(15),
        live,
    )
    .await;
    // REST: numbers in paths, queries and headers of requests.
    for path in [
        "/v1/accounts/5WT31842/snapshot",
        "/v1/accounts/5wt31842/balance?x=9ZZ12345",
        "/v1/accounts/individual/orders?status=5WU09822",
        "/v1/accounts",
    ] {
        let response = http
            .get(format!("{url}{path}"))
            .header("x-request-id", "5WT31842")
            .send()
            .await
            .unwrap();
        received.push_str(&format!("{:?}", response.headers()));
        received.push_str(&response.text().await.unwrap());
    }
    for id in ["individual", "roth-ira"] {
        received.push_str(
            &http
                .get(format!("{url}/v1/accounts/{id}/snapshot"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    // What the stream carried meanwhile.
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(deadline, sse.next()).await {
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        received.contains("***1842") && received.contains("***2345"),
        "the injected numbers arrived masked"
    );
    child.kill().await.unwrap();
    while let Ok(Some(line)) = lines.next_line().await {
        stdout.push_str(&line);
    }
    let logged = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(
        logged.lines().count() > 50,
        "RUST_LOG=debug logged {} lines",
        logged.lines().count()
    );
    assert!(
        logged.contains("skipped"),
        "the bad input was logged (masked)"
    );
    let leaks: Vec<String> = [
        ("log", &logged),
        ("stdout", &stdout),
        ("responses and streams", &received),
    ]
    .into_iter()
    .flat_map(|(place, text)| {
        leaks_in(text)
            .into_iter()
            .map(move |l| format!("{place}: {l}"))
    })
    .collect();
    println!(
        "leak scan: {} log lines, {} bytes received",
        logged.lines().count(),
        received.len()
    );
    assert!(leaks.is_empty(), "{leaks:#?}");
}

#[tokio::test]
async fn terminal_orders_leave_the_snapshot_at_the_trading_day_roll() {
    let gw = TestGateway::start(&["--heartbeat-secs", "2"]).await;
    let number = INDIVIDUAL;
    let filled = json!({"id": 777_001, "account-number": number, "status": "Filled", "size": 1, "updated-at": 4_102_444_800_000i64,
        "legs": [{"symbol": "AAPL", "instrument-type": "Equity", "action": "Buy to Open", "quantity": 1, "remaining-quantity": 0,
            "fills": [{"fill-id": "roll-1", "quantity": 1, "fill-price": "190.00"}]}]});
    gw.inject(number, "Order", filled).await;
    let has = |snapshot: &serde_json::Value, id: u64| {
        snapshot["orders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == id)
    };
    wait_until(
        "the filled order is held",
        Duration::from_secs(5),
        || async { has(&gw.snapshot("individual").await, 777_001) },
    )
    .await;
    let (mut sse, _) = gw.subscribed("individual").await;
    let rolled = gw.sim_post("/sim/day-roll", json!({})).await;
    assert!(rolled["removed"].as_u64() >= Some(2), "{rolled}");
    // The next resync (here after a reconnect; else the reconcile watchdog) sees the roll.
    gw.sim_post("/sim/faults/drop", json!({})).await;
    let removed = sse.next_of("OrderRemoved", Duration::from_secs(10)).await;
    assert_eq!(removed.data["source"], "resync");
    let snapshot = gw
        .converge("individual", number, Duration::from_secs(5))
        .await;
    assert!(
        !has(&snapshot, 777_001),
        "the filled order left the snapshot"
    );
    let working = snapshot["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["status"] == "Live")
        .count();
    assert!(working >= 1, "working orders stay: {snapshot}");
    gw.stop().await;
}
