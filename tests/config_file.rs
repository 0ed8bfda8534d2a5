//! The optional TOML config file, through the real binary: its keys are the flags' names,
//! flags and environment variables win over it, and a bad value or key is refused at start
//! with a message that names the key and what it accepts.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

fn file(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ttgw-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

async fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

#[tokio::test]
async fn bad_values_and_unknown_keys_are_refused_by_name() {
    let range = file("range.toml", "heartbeat-secs = 99\n");
    assert_eq!(
        refused(&["--config", range.to_str().unwrap()], &[]).await,
        "tastytrade-gateway: invalid setting heartbeat-secs: must be from 2 to 60 (tastytrade's heartbeat window)"
    );
    let unknown = file("unknown.toml", "hearbeat-secs = 5\n");
    let message = refused(&["serve", "--config", unknown.to_str().unwrap()], &[]).await;
    assert!(
        message.starts_with(
            "tastytrade-gateway: invalid setting config: unknown key `hearbeat-secs` in "
        ),
        "{message}"
    );
    assert!(message.contains("heartbeat-secs, "), "{message}");
    let typed = file("typed.toml", "listen = \"nowhere\"\n");
    let message = refused(&["--config", typed.to_str().unwrap()], &[]).await;
    assert!(message.contains("--listen"), "{message}");
    let account = file("account.toml", "accounts = [\"x y=5WT31842\"]\n");
    let message = refused(&["--config", account.to_str().unwrap()], &[]).await;
    assert_eq!(
        message,
        "tastytrade-gateway: invalid setting accounts: alias for ***1842 must be 1-40 of a-z, A-Z, 0-9, - and _"
    );
    assert!(!message.contains("5WT31842"));
}

#[tokio::test]
async fn file_settings_apply_and_flags_and_env_win() {
    // The file's heartbeat is out of range, but the environment overrides it; the file's
    // accounts and alias apply.
    let path = file(
        "good.toml",
        "listen = \"127.0.0.1:1\"\nheartbeat-secs = 99\nsim-rate = 0\naccounts = [\"main=5WT31842\"]\n",
    );
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"))
        .args([
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("TTGW_HEARTBEAT_SECS", "7")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        first.starts_with("tastytrade-gateway is serving 1 account(s) on http://127.0.0.1:"),
        "{first}"
    );
    let url = first.rsplit(' ').next().unwrap();
    let body: serde_json::Value = reqwest::get(format!("{url}/v1/accounts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["accounts"][0]["id"], "main");
    assert_eq!(body["accounts"][0]["account_number"], "***1842");
    child.kill().await.unwrap();
}
