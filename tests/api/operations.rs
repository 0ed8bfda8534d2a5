//! Operating it (issue 14): a fresh gateway binary's /metrics describes every family it will ever
//! emit, parsed with a Prometheus text-format parser; with `--log-format json` every line the
//! binary writes is JSON, and each request has exactly one access-log line with its id.

use std::collections::HashSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::binary::{all_live, spawn};
use crate::helpers::gateway::SseClient;
use crate::helpers::{INDIVIDUAL, wait_until};
use serde_json::{Value, json};
use tastytrade_gateway::metrics::FAMILIES;
use tokio::io::{AsyncBufReadExt, BufReader};

/// `# TYPE` names of a text exposition.
fn typed(text: &str) -> HashSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_fresh_gateway_describes_every_family_it_will_ever_emit() {
    // The binary, in a process of its own: in this test process the Prometheus recorder is
    // shared by every test's gateway, so it is fresh only in a new one.
    let gateway = spawn(&["--listen", "127.0.0.1:0", "--sim-rate", "0"], &[]).await;
    let url = gateway.url.clone();
    let sim = gateway.sim.clone().expect("demo mode names its simulator");
    let http = reqwest::Client::new();
    wait_until("every account live", Duration::from_secs(15), || {
        all_live(&http, &url)
    })
    .await;
    let scrape_text = || async {
        let response = http.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    };
    let fresh = scrape_text().await;
    let parsed = prometheus_parse::Scrape::parse(fresh.lines().map(|l| Ok(l.to_string())))
        .expect("valid exposition");
    let types = typed(&fresh);
    for family in FAMILIES {
        assert!(parsed.docs.contains_key(family), "no # HELP for {family}");
        assert!(types.contains(family), "no # TYPE for {family}");
        assert!(
            parsed
                .samples
                .iter()
                .any(|s| s.metric == family || s.metric.starts_with(&format!("{family}_"))),
            "{family} has no sample on a fresh gateway"
        );
    }
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            parsed.samples.iter().any(|s| s.metric == process),
            "no {process}"
        );
    }
    let version = parsed
        .samples
        .iter()
        .find(|s| s.metric == "ttgw_build_info")
        .expect("build info");
    assert_eq!(
        version.labels.get("version"),
        Some(env!("CARGO_PKG_VERSION"))
    );

    // After traffic of every kind, whatever appears is described, and labels stay bounded.
    let mut sse = SseClient::connect(
        &http,
        &format!("{url}/v1/accounts/individual/events"),
        None,
        Arc::default(),
    )
    .await;
    sse.next(Duration::from_secs(5)).await;
    let injected = http
        .post(format!("{sim}/sim/accounts/{INDIVIDUAL}/events"))
        .json(&json!({"raw": r#"{"type":"SomethingNew-7f3a","data":{"x":1},"timestamp":1}"#}))
        .send()
        .await
        .unwrap();
    assert!(injected.status().is_success(), "{}", injected.status());
    sse.next_of("SomethingNew-7f3a", Duration::from_secs(5))
        .await;
    let _ = http
        .get(format!("{url}/v1/accounts/no-such/snapshot"))
        .send()
        .await
        .unwrap();
    let later = scrape_text().await;
    let parsed = prometheus_parse::Scrape::parse(later.lines().map(|l| Ok(l.to_string()))).unwrap();
    let types = typed(&later);
    for sample in &parsed.samples {
        let family = FAMILIES
            .iter()
            .find(|f| sample.metric == **f || sample.metric.starts_with(&format!("{f}_")))
            .map(|f| f.to_string())
            .or_else(|| {
                sample
                    .metric
                    .starts_with("process_")
                    .then(|| sample.metric.clone())
            });
        let family = family.unwrap_or_else(|| panic!("undeclared family {}", sample.metric));
        assert!(
            types.contains(&family) || types.iter().any(|t| sample.metric.starts_with(t.as_str())),
            "{family} without # TYPE"
        );
        assert!(
            !sample.labels.values().any(|v| v.contains("SomethingNew")),
            "unknown types are labelled `other`: {sample:?}"
        );
    }
    assert!(
        later.contains(r#"type="other""#),
        "the unknown type counted as other"
    );
    assert!(
        later.contains(r#"route="/v1/accounts/{id}/snapshot""#),
        "route templates, not paths"
    );
    assert!(!later.contains("no-such"), "no raw path in a label");
}

#[tokio::test]
async fn in_json_mode_every_line_is_json_and_each_request_is_logged_once() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--sim-rate",
            "0",
            "--log-format",
            "json",
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let errors = tokio::spawn(async move {
        let mut lines = Vec::new();
        let mut stderr = stderr.lines();
        while let Ok(Some(line)) = stderr.next_line().await {
            lines.push(line);
        }
        lines
    });
    let first = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let banner: Value = serde_json::from_str(&first)
        .unwrap_or_else(|e| panic!("banner is not JSON ({e}): {first}"));
    let url = banner["url"]
        .as_str()
        .expect("the banner names the URL")
        .to_string();
    let http = reqwest::Client::new();
    wait_until("ready", Duration::from_secs(15), || async {
        http.get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let ids: Vec<String> = (0..5).map(|i| format!("req-json-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let path = [
            "/v1/accounts",
            "/v1/accounts/individual/snapshot",
            "/v1/accounts/nope/snapshot",
            "/healthz",
            "/metrics",
        ][i];
        http.get(format!("{url}{path}"))
            .header("x-request-id", id)
            .send()
            .await
            .unwrap();
    }
    // Each access line is written before its response leaves, so all are in the pipes now.
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let mut lines = vec![first];
    while let Ok(Some(line)) = stdout.next_line().await {
        lines.push(line);
    }
    lines.extend(errors.await.unwrap());
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for id in &ids {
        let access: Vec<&Value> = parsed
            .iter()
            .filter(|l| l["target"] == "tastytrade_gateway::access" && l["request_id"] == json!(id))
            .collect();
        assert_eq!(access.len(), 1, "one access line for {id}: {access:?}");
        let line = access[0];
        assert!(
            line["status"].is_u64() && line["route"].is_string() && line["latency_ms"].is_number(),
            "{line}"
        );
        assert_eq!(line["level"], "INFO");
    }
    println!("{} lines, all JSON", lines.len());
}
