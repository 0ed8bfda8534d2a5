//! OTLP export (issue 14), with `--features otlp`: the binary, given only
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL) and the default log level, posts its spans to
//! `<base>/v1/traces`; this test is that receiver, decodes the protobuf it got, and finds
//! the request span of `/v1/accounts` with its route, status and request id, and no full
//! account number anywhere in the export.
//!
//! A test binary of its own, outside `tests/api/`: it needs the binary built with the cargo
//! feature `otlp`, so without the feature this file holds no test, and `.ci/run` runs it
//! by name, `cargo test --locked --features otlp --test otlp`.
#![cfg(feature = "otlp")]

// The helpers of `tests/api/`; this binary uses a few of them, hence `dead_code`.
#[path = "api/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use helpers::binary::spawn_command;
use helpers::wait_until;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

async fn receive(
    State(received): State<Received>,
    uri: axum::http::Uri,
    body: Bytes,
) -> &'static str {
    received
        .lock()
        .unwrap()
        .push((uri.path().to_string(), body));
    ""
}

fn attribute(
    attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test]
async fn request_spans_reach_an_otlp_receiver_at_v1_traces() {
    let received: Received = Arc::default();
    let app = axum::Router::new()
        .fallback(post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"));
    command
        .args(["--listen", "127.0.0.1:0", "--sim-rate", "0"])
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{receiver}"))
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let spawned = spawn_command(command, Stdio::null()).await;
    let (mut child, url) = (spawned.child, spawned.url);
    let http = reqwest::Client::new();
    wait_until("accounts live", Duration::from_secs(15), || async {
        http.get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let response = http
        .get(format!("{url}/v1/accounts"))
        .header("x-request-id", "otlp-test-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let found = || {
        let received = received.lock().unwrap();
        received
            .iter()
            .flat_map(|(path, body)| {
                let request =
                    ExportTraceServiceRequest::decode(body.clone()).expect("OTLP protobuf");
                request
                    .resource_spans
                    .into_iter()
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans)
                    .map(move |span| (path.clone(), span))
                    .collect::<Vec<_>>()
            })
            .find(|(_, span)| {
                attribute(&span.attributes, "request_id").as_deref() == Some("otlp-test-1")
            })
    };
    wait_until(
        "the request span arrived",
        Duration::from_secs(10),
        || async { found().is_some() },
    )
    .await;
    let (path, span) = found().unwrap();
    assert_eq!(
        path, "/v1/traces",
        "the endpoint is a base; /v1/traces is appended"
    );
    assert_eq!(span.name, "request");
    assert_eq!(
        attribute(&span.attributes, "route").as_deref(),
        Some("/v1/accounts")
    );
    assert_eq!(
        attribute(&span.attributes, "status").as_deref(),
        Some("200")
    );
    let everything: Vec<u8> = received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, b)| b.to_vec())
        .collect();
    let text = String::from_utf8_lossy(&everything);
    for number in ["5WT31842", "5WU09822", "5WV55120"] {
        assert!(!text.contains(number), "{number} in the OTLP export");
    }
    assert!(text.contains("tastytrade-gateway"), "the service name");
    child.kill().await.unwrap();
}
