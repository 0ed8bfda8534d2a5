//! Looking at the cluster from outside: the journal read straight from JetStream (terms of
//! its message ids, its leader, its last seq), snapshots against the simulator's truth, and
//! the scan for account numbers in everything the nodes logged.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use futures::StreamExt;
use serde_json::{Value, json};

use super::harness::Cluster;

const STREAM: &str = "TTGW_EVT";

async fn context(urls: &[String]) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(3))
        .connect(urls)
        .await
        .expect("the test reaches NATS");
    jetstream::new(client)
}

/// The name of the nats-server leading the journal stream.
pub async fn stream_leader(urls: &[String]) -> String {
    let js = context(urls).await;
    let stream = js.get_stream(STREAM).await.expect("the journal stream");
    let info = stream.get_info().await.expect("stream info");
    info.cluster.and_then(|c| c.leader).expect("a leader")
}

/// The journal's last seq (0 while it does not answer).
pub async fn last_seq(urls: &[String]) -> u64 {
    let js = context(urls).await;
    let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(2), js.get_stream(STREAM)).await
    else {
        return 0;
    };
    match tokio::time::timeout(Duration::from_secs(2), stream.get_info()).await {
        Ok(Ok(info)) => info.state.last_sequence,
        _ => 0,
    }
}

/// For each account, the terms of its journal messages (`Nats-Msg-Id` =
/// `<account>.<term>.<k>`) never go back: once a newer leader appended, no older one did.
pub async fn assert_terms_never_go_back(urls: &[String], accounts: &[String]) {
    let js = context(urls).await;
    let stream = js.get_stream(STREAM).await.expect("the journal stream");
    for account in accounts {
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: format!("ttgw.evt.{account}"),
                ..Default::default()
            })
            .await
            .expect("a consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut terms = Vec::new();
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
                .await
                .expect("the journal reads")
                .expect("more messages")
                .expect("a message");
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_string())
                .unwrap_or_default();
            let term: u64 = id
                .split('.')
                .nth(1)
                .and_then(|t| t.parse().ok())
                .expect("a term in the id");
            if let Some(&newest) = terms.iter().max() {
                assert!(
                    term >= newest,
                    "{account}: term {term} appended after term {newest} ({id})"
                );
            }
            terms.push(term);
            if message.info().expect("info").pending == 0 {
                break;
            }
        }
    }
}

/// The simulator's truth per account (last four digits of its number -> truth), numbers
/// masked as the gateway masks them.
pub fn masked_truth(truth: &Value) -> BTreeMap<String, Value> {
    let accounts = truth["accounts"].as_array().cloned().unwrap_or_default();
    let mut text = Value::Array(accounts.clone()).to_string();
    for account in &accounts {
        if let Some(number) = account["account-number"].as_str() {
            text = text.replace(number, &format!("***{}", &number[number.len() - 4..]));
        }
    }
    let masked: Vec<Value> = serde_json::from_str(&text).expect("JSON");
    masked
        .into_iter()
        .map(|a| {
            (
                a["account-number"].as_str().unwrap_or_default().to_string(),
                a,
            )
        })
        .collect()
}

fn keyed(items: &Value, key: &dyn Fn(&Value) -> String) -> BTreeMap<String, Value> {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (key(v), v.clone()))
        .collect()
}

fn id_key(v: &Value) -> String {
    v["id"].to_string().trim_matches('"').to_string()
}

fn position_key(v: &Value) -> String {
    format!("{}|{}", v["symbol"], v["instrument-type"])
}

/// Whether every account's snapshot on `node` equals its truth (balance, trading status,
/// positions, orders, complex orders); if not, the first difference.
pub async fn snapshots_match(
    http: &reqwest::Client,
    node: &str,
    truth: &BTreeMap<String, Value>,
) -> Result<(), String> {
    let response = http
        .get(format!("{node}/v1/accounts"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let accounts: Value = response.json().await.unwrap_or_default();
    for account in accounts["accounts"].as_array().into_iter().flatten() {
        let id = account["id"].as_str().unwrap_or_default();
        let number = account["account_number"].as_str().unwrap_or_default();
        let expected = truth.get(number).ok_or(format!("no truth for {number}"))?;
        let response = http
            .get(format!("{node}/v1/accounts/{id}/snapshot"))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let snapshot: Value = response.json().await.unwrap_or_default();
        let parts = [
            (
                "balance",
                snapshot["balance"].clone(),
                expected["balance"].clone(),
            ),
            (
                "trading status",
                snapshot["trading_status"].clone(),
                expected["trading-status"].clone(),
            ),
            (
                "positions",
                json!(keyed(&snapshot["positions"], &position_key)),
                json!(keyed(&expected["positions"], &position_key)),
            ),
            (
                "orders",
                json!(keyed(&snapshot["orders"], &id_key)),
                json!(keyed(&expected["orders"], &id_key)),
            ),
            (
                "complex orders",
                json!(keyed(&snapshot["complex_orders"], &id_key)),
                json!(keyed(&expected["complex-orders"], &id_key)),
            ),
        ];
        for (part, ours, theirs) in parts {
            if ours != theirs {
                let mut differences = Vec::new();
                differ(part, &ours, &theirs, &mut differences);
                return Err(format!(
                    "{id} at seq {}: {}",
                    snapshot["seq"],
                    differences.join("; ")
                ));
            }
        }
    }
    Ok(())
}

/// Where two JSON values differ: `path: node value / truth value`, leaves only.
fn differ(path: &str, ours: &Value, theirs: &Value, out: &mut Vec<String>) {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                let (x, y) = (
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                );
                if x != y {
                    differ(&format!("{path}.{key}"), x, y, out);
                }
            }
        }
        _ => out.push(format!("{path}: node {ours} / truth {theirs}")),
    }
}

/// No node logged a full account number.
pub async fn assert_no_numbers(cluster: &Cluster) {
    let truth = cluster.sim.get(&cluster.http, "/sim/truth").await;
    let logs = cluster.logs();
    assert!(!logs.is_empty(), "the nodes logged nothing");
    for account in truth["accounts"].as_array().into_iter().flatten() {
        let number = account["account-number"].as_str().expect("a number");
        assert!(
            !logs.contains(number),
            "a node logged account number {number}"
        );
    }
}
