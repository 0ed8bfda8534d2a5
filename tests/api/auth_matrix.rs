//! Consumer auth acceptance: for every API route, no key, a wrong key, an out-of-scope key,
//! the `*` key and the query-parameter key get exact status codes and bodies; `/v1/events`
//! and WebSocket subscriptions carry only the key's accounts; health, docs and the OpenAPI
//! document stay open; the gateway refuses to listen beyond loopback without keys, and reads
//! `TTGW_API_KEYS` in its `;` syntax.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::gateway::TestGateway;
use crate::helpers::streams::{LeakScan, RawHttp, split_combined};
use crate::helpers::ws::{self, scanned_json, send_json, ws_url};
use crate::helpers::{INDIVIDUAL, ROTH, SECOND};
use clap::Parser;
use serde_json::{Value, json};
use tastytrade_gateway::config::{Config, ServeArgs};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_tungstenite::tungstenite;

const KEYS: [&str; 4] = [
    "--api-key",
    "reader:s3cret:individual",
    "--api-key",
    "ops:t0ken:*",
];

/// How a request presents (or fails to present) a key.
#[derive(Clone, Copy, Debug)]
enum Key {
    None,
    Wrong,
    /// `Authorization: Basic`: not a bearer key.
    WrongScheme,
    Reader,
    Ops,
    ReaderQuery,
    OpsQuery,
}

impl Key {
    const ALL: [Key; 7] = [
        Key::None,
        Key::Wrong,
        Key::WrongScheme,
        Key::Reader,
        Key::Ops,
        Key::ReaderQuery,
        Key::OpsQuery,
    ];

    fn header(self) -> Option<&'static str> {
        match self {
            Key::Wrong => Some("Bearer s3cret-not"),
            Key::WrongScheme => Some("Basic dDBrZW4="),
            Key::Reader => Some("Bearer s3cret"),
            Key::Ops => Some("Bearer t0ken"),
            _ => None,
        }
    }

    fn query(self) -> &'static str {
        match self {
            Key::ReaderQuery => "access_token=s3cret",
            Key::OpsQuery => "access_token=t0ken",
            _ => "",
        }
    }

    fn with_query(self, path: &str) -> String {
        match self.query() {
            "" => path.to_string(),
            q if path.contains('?') => format!("{path}&{q}"),
            q => format!("{path}?{q}"),
        }
    }

    fn valid(self) -> bool {
        matches!(
            self,
            Key::Reader | Key::Ops | Key::ReaderQuery | Key::OpsQuery
        )
    }

    fn sees_roth(self) -> bool {
        matches!(self, Key::Ops | Key::OpsQuery)
    }
}

fn error_body(code: &str) -> Value {
    let message = match code {
        "unauthorized" => {
            "a valid API key or token is required: `Authorization: Bearer <key>`, `access_token=<key>` or the token cookie"
        }
        "unknown_account" => "no account with that id; GET /v1/accounts lists them",
        other => panic!("no such code {other}"),
    };
    json!({"error": {"code": code, "message": message}})
}

/// The status a key gets on a route about `account` (None: not about one account).
fn expected_status(key: Key, account: Option<&str>) -> u16 {
    if !key.valid() {
        return 401;
    }
    match account {
        Some("nope") => 404,
        // Out of scope answers exactly as unknown (no enumeration).
        Some("roth-ira") if !key.sees_roth() => 404,
        _ => 200,
    }
}

async fn rest(
    http: &reqwest::Client,
    scan: &LeakScan,
    url: &str,
    key: Key,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = http.get(format!("{url}{}", key.with_query("")));
    if let Some(header) = key.header() {
        request = request.header("authorization", header);
    }
    let response = request.send().await.expect("gateway answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    scan.scan("response headers", format!("{headers:?}").as_bytes());
    let body = response.bytes().await.expect("body");
    scan.scan("response body", &body);
    (
        status,
        headers,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

fn assert_refusal(what: &str, status: u16, headers: &reqwest::header::HeaderMap, body: &Value) {
    let code = match status {
        401 => "unauthorized",
        404 => "unknown_account",
        other => panic!("{what}: unexpected status {other}"),
    };
    assert_eq!(*body, error_body(code), "{what}");
    assert_eq!(
        headers.get("www-authenticate").map(|v| v.to_str().unwrap()),
        (status == 401).then_some("Bearer"),
        "{what}: WWW-Authenticate only on 401"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_kind_of_key_exactly() {
    let gw = TestGateway::start_as(&KEYS, Some("t0ken")).await;
    let scan = LeakScan::new(&["s3cret", "t0ken"]);
    let http = reqwest::Client::new();

    for key in Key::ALL {
        // The account list shows the key's accounts only.
        let (status, headers, body) =
            rest(&http, &scan, &format!("{}/v1/accounts", gw.url), key).await;
        let what = format!("/v1/accounts with {key:?}");
        assert_eq!(status, expected_status(key, None), "{what}");
        if status == 200 {
            let ids: Vec<&str> = body["accounts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap())
                .collect();
            let expected = if key.sees_roth() {
                vec!["individual", "roth-ira"]
            } else {
                vec!["individual"]
            };
            assert_eq!(ids, expected, "{what}");
        } else {
            assert_refusal(&what, status, &headers, &body);
        }

        // Snapshots.
        for account in ["individual", "roth-ira", "nope"] {
            let path = format!("/v1/accounts/{account}/snapshot");
            let (status, headers, body) =
                rest(&http, &scan, &format!("{}{path}", gw.url), key).await;
            let what = format!("{path} with {key:?}");
            assert_eq!(status, expected_status(key, Some(account)), "{what}");
            if status == 200 {
                assert_eq!(body["account"], account, "{what}");
            } else {
                assert_refusal(&what, status, &headers, &body);
            }
        }

        // One account's stream.
        for account in ["individual", "roth-ira", "nope"] {
            let path = key.with_query(&format!("/v1/accounts/{account}/events"));
            let headers: Vec<(&str, &str)> = key
                .header()
                .map(|h| ("Authorization", h))
                .into_iter()
                .collect();
            let mut raw = RawHttp::get(gw.gateway.addr, &path, &headers, None, Some(&scan)).await;
            let what = format!("{path} with {key:?}");
            let expected = expected_status(key, Some(account));
            assert_eq!(raw.head.status, expected, "{what}");
            if expected == 200 {
                assert_eq!(raw.head.header("content-type"), Some("text/event-stream"));
                let frames = raw.read_frames(1, 5 * SECOND).await;
                assert_eq!(frames[0].event(), Some("snapshot"), "{what}");
                assert_eq!(frames[0].json()["account"], account, "{what}");
            } else {
                raw.read_to_end(5 * SECOND).await;
                let body: Value = serde_json::from_slice(&raw.body).unwrap();
                assert_eq!(
                    raw.head.header("www-authenticate"),
                    (expected == 401).then_some("Bearer"),
                    "{what}"
                );
                let code = match expected {
                    401 => "unauthorized",
                    _ => "unknown_account",
                };
                assert_eq!(body, error_body(code), "{what}");
            }
        }

        // Every visible account's stream.
        let path = key.with_query("/v1/events");
        let headers: Vec<(&str, &str)> = key
            .header()
            .map(|h| ("Authorization", h))
            .into_iter()
            .collect();
        let mut raw = RawHttp::get(gw.gateway.addr, &path, &headers, None, Some(&scan)).await;
        let what = format!("{path} with {key:?}");
        assert_eq!(raw.head.status, expected_status(key, None), "{what}");
        if raw.head.status == 200 {
            let snapshots = if key.sees_roth() { 2 } else { 1 };
            let frames = raw.read_frames(snapshots, 5 * SECOND).await;
            let accounts: Vec<Value> = frames.iter().map(|f| f.json()["account"].clone()).collect();
            // The last starting snapshot's id names every account (earlier ones only those
            // whose snapshot was sent).
            let ids: Vec<String> = split_combined(frames[snapshots - 1].id().unwrap())
                .1
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            if key.sees_roth() {
                assert_eq!(accounts, vec![json!("individual"), json!("roth-ira")]);
                assert_eq!(ids, vec!["individual", "roth-ira"], "{what}");
            } else {
                assert_eq!(accounts, vec![json!("individual")]);
                assert_eq!(
                    ids,
                    vec!["individual"],
                    "{what}: the id holds only its accounts"
                );
            }
        } else {
            raw.read_to_end(5 * SECOND).await;
            let body: Value = serde_json::from_slice(&raw.body).unwrap();
            assert_eq!(body, error_body("unauthorized"), "{what}");
        }

        // The WebSocket upgrade.
        let bearer = key.header().and_then(|h| h.strip_prefix("Bearer "));
        let query = match key.query() {
            "" => String::new(),
            q => format!("?{q}"),
        };
        let url = ws_url(&gw.url, &query);
        let attempt = if matches!(key, Key::WrongScheme) {
            let mut request =
                tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
            request
                .headers_mut()
                .insert("authorization", "Basic dDBrZW4=".parse().unwrap());
            tokio_tungstenite::connect_async(request)
                .await
                .map(|(ws, _)| ws)
        } else {
            ws::try_connect(&url, bearer).await
        };
        match (key.valid(), attempt) {
            (true, Ok(mut ws)) => {
                send_json(
                    &mut ws,
                    json!({"op": "subscribe", "id": 1, "accounts": ["*"]}),
                )
                .await;
                let ack = scanned_json(&mut ws, 5 * SECOND, &scan).await;
                let expected = if key.sees_roth() {
                    json!(["individual", "roth-ira"])
                } else {
                    json!(["individual"])
                };
                assert_eq!(ack["accounts"], expected, "/v1/ws with {key:?}");
                send_json(
                    &mut ws,
                    json!({"op": "subscribe", "id": 2, "accounts": ["roth-ira"]}),
                )
                .await;
                let mut reply = scanned_json(&mut ws, 5 * SECOND, &scan).await;
                while reply["type"] == "snapshot" {
                    reply = scanned_json(&mut ws, 5 * SECOND, &scan).await;
                }
                if key.sees_roth() {
                    assert_eq!(reply["type"], "ack");
                } else {
                    assert_eq!(
                        reply,
                        json!({"type": "error", "id": 2, "code": "unknown_account", "message": "no account with that id; GET /v1/accounts lists them (account #1 of the request)"}),
                        "/v1/ws with {key:?}"
                    );
                }
            }
            (false, Err(tungstenite::Error::Http(response))) => {
                assert_eq!(response.status().as_u16(), 401, "/v1/ws with {key:?}");
                let body: Value =
                    serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
                assert_eq!(body, error_body("unauthorized"));
                assert_eq!(response.headers()["www-authenticate"], "Bearer");
            }
            (valid, other) => panic!(
                "/v1/ws with {key:?} (valid: {valid}): {:?}",
                other.map(|_| "upgraded")
            ),
        }
    }

    // The open routes stay open, whatever is (not) presented.
    for key in [Key::None, Key::Wrong] {
        for path in ["/healthz", "/readyz", "/openapi.json", "/docs", "/docs/"] {
            let (status, _, body) = rest(&http, &scan, &format!("{}{path}", gw.url), key).await;
            assert_eq!(status, 200, "{path} with {key:?}");
            match path {
                "/healthz" | "/readyz" => {
                    assert_eq!(
                        body,
                        json!({"status": "ok", "reasons": [], "degraded": []}),
                        "{path}"
                    )
                }
                "/openapi.json" => assert!(body["paths"]["/v1/events"].is_object()),
                _ => {}
            }
        }
    }
    scan.assert_clean(10_000);
    gw.stop().await;
}

#[tokio::test]
async fn v1_events_for_a_scoped_key_carries_only_its_accounts() {
    let gw = TestGateway::start_as(&KEYS, Some("t0ken")).await;
    let scan = LeakScan::new(&["s3cret", "t0ken"]);
    let mut reader = RawHttp::get(
        gw.gateway.addr,
        "/v1/events?access_token=s3cret",
        &[],
        None,
        Some(&scan),
    )
    .await;
    let first = reader.read_frames(1, 5 * SECOND).await;
    let (epoch, pairs) = split_combined(first[0].id().unwrap());
    let seq = pairs[0].1;
    let mut ops = gw.sse("/v1/events", None).await;
    ops.next(5 * SECOND).await;
    ops.next(5 * SECOND).await;
    for (number, id) in [(ROTH, 555001), (INDIVIDUAL, 555002), (ROTH, 555003)] {
        gw.inject(
            number,
            "Order",
            json!({"id": id, "status": "Live", "updated-at": 4_102_444_800_000_i64 + id}),
        )
        .await;
    }
    let mut seen: Vec<(String, u64)> = Vec::new();
    for _ in 0..3 {
        let event = ops.next(5 * SECOND).await;
        seen.push((
            event.data["account"].as_str().unwrap().to_string(),
            event.data["data"]["id"].as_u64().unwrap(),
        ));
    }
    // Each account in order; the two accounts' upstreams are independent of each other.
    seen.sort_by_key(|(account, _)| account.clone());
    assert_eq!(
        seen,
        vec![
            ("individual".to_string(), 555002),
            ("roth-ira".to_string(), 555001),
            ("roth-ira".to_string(), 555003),
        ],
        "the ops key sees both accounts"
    );
    let frames = reader.read_frames(2, 5 * SECOND).await;
    let event = frames[1].json();
    assert_eq!(event["account"], "individual");
    assert_eq!(event["data"]["id"], 555002);
    assert_eq!(
        frames[1].id(),
        Some(format!("{epoch}-individual.{}", seq + 1).as_str())
    );
    // Nothing else: the roth-ira orders never reach the reader.
    reader.read_quiet(Duration::from_millis(300)).await;
    assert_eq!(reader.frames().len(), 2, "{}", reader.text());
    scan.assert_clean(1000);
    gw.assert_no_leaks();
    gw.stop().await;
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

#[test]
fn listening_beyond_loopback_without_keys_is_refused_naming_api_keys() {
    let parse = |args: &[&str]| {
        let mut all = vec!["tastytrade-gateway"];
        all.extend_from_slice(args);
        Config::from_args(Cli::try_parse_from(all).expect("flags parse").serve)
    };
    let error = parse(&["--listen", "0.0.0.0:0"]).unwrap_err();
    assert_eq!(error.key, "api-keys");
    assert_eq!(
        error.to_string(),
        "api-keys: consumer API keys are required when listening beyond loopback (e.g. TTGW_API_KEYS=reader:SECRET:*)"
    );
    assert!(parse(&["--listen", "0.0.0.0:0", "--api-key", "ops:t0ken:*"]).is_ok());
    assert!(
        parse(&["--listen", "127.0.0.1:0"]).is_ok(),
        "demo on loopback may run open"
    );
    let error = parse(&["--api-key", "reader:hunter2"]).unwrap_err();
    assert_eq!(error.key, "api-keys");
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

fn gateway_command() -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"));
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("TTGW_") || n == "RUST_LOG") {
        command.env_remove(name);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_binary_refuses_an_open_wildcard_listen_and_reads_ttgw_api_keys() {
    let output = tokio::time::timeout(
        20 * SECOND,
        gateway_command().args(["--listen", "0.0.0.0:0"]).output(),
    )
    .await
    .expect("the refusal is immediate")
    .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "tastytrade-gateway: invalid setting api-keys: consumer API keys are required"
        ),
        "{stderr}"
    );

    // With keys from the environment it serves, on every interface, and enforces them.
    let mut child = gateway_command()
        .args(["--listen", "0.0.0.0:0", "--sim-rate", "0"])
        .env("TTGW_API_KEYS", "reader:s3cret:individual;ops:t0ken:*")
        .spawn()
        .expect("the binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    let port = tokio::time::timeout(20 * SECOND, async {
        while let Some(line) = stdout.next_line().await.expect("stdout") {
            banner.push(line.clone());
            if let Some(rest) =
                line.strip_prefix("tastytrade-gateway is serving 2 account(s) on http://0.0.0.0:")
            {
                return rest.trim().to_string();
            }
        }
        panic!("no banner: {banner:?}");
    })
    .await
    .expect("the banner within 20 s");
    // The rest of the banner arrives at once.
    tokio::time::timeout(5 * SECOND, async {
        while let Some(line) = stdout.next_line().await.expect("stdout") {
            let done = line.contains("live events:");
            banner.push(line);
            if done {
                break;
            }
        }
    })
    .await
    .expect("the whole banner");
    assert!(
        !banner.iter().any(|l| l.contains("without consumer auth")),
        "the banner must not claim the API is open when keys are enforced: {banner:#?}"
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let status = http
        .get(format!("{url}/v1/accounts"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let body: Value = http
        .get(format!("{url}/v1/accounts"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = body["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["individual"]);
    let status = http
        .get(format!("{url}/v1/accounts/roth-ira/snapshot"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404, "out of scope answers like unknown");
    child.start_kill().expect("stop the child we started");
    let _ = tokio::time::timeout(10 * SECOND, child.wait()).await;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = tokio::time::timeout(5 * SECOND, pipe.read_to_string(&mut stderr)).await;
    }
    let scan = LeakScan::new(&["s3cret", "t0ken"]);
    scan.scan("the binary's stdout", banner.join("\n").as_bytes());
    scan.scan("the binary's stderr (logs)", stderr.as_bytes());
    scan.scan("the body", body.to_string().as_bytes());
    scan.assert_clean(100);
}
