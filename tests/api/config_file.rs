//! The optional TOML config file, through the real binary: its keys are the flags' names,
//! flags and environment variables win over it, and a bad value or key is refused at start
//! with a message that names the key and what it accepts.

use crate::helpers::binary::spawn;

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
    let mut gateway = spawn(
        &[
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("TTGW_HEARTBEAT_SECS", "7")],
    )
    .await;
    let first = &gateway.banner[0];
    assert!(
        first.starts_with("tastytrade-gateway is serving 1 account(s) on http://127.0.0.1:"),
        "{first}"
    );
    let url = &gateway.url;
    let body: serde_json::Value = reqwest::get(format!("{url}/v1/accounts"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["accounts"][0]["id"], "main");
    assert_eq!(body["accounts"][0]["account_number"], "***1842");
    gateway.child.kill().await.unwrap();
}

#[tokio::test]
async fn switches_take_true_and_false_in_the_file() {
    for (value, user_stream) in [("true", true), ("false", false)] {
        let path = file(
            &format!("switch-{value}.toml"),
            &format!("sim-rate = 0\nquote-alerts = {value}\npublic-watchlists = {value}\n"),
        );
        let mut gateway = spawn(
            &[
                "--config",
                path.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            &[],
        )
        .await;
        let url = &gateway.url;
        let status = reqwest::get(format!("{url}/v1/accounts/user/snapshot"))
            .await
            .unwrap()
            .status();
        assert_eq!(
            status == 200,
            user_stream,
            "quote-alerts = {value}: /v1/accounts/user is {status}"
        );
        gateway.child.kill().await.unwrap();
    }
    let bad = file("switch-bad.toml", "quote-alerts = \"yes\"\n");
    let message = refused(&["--config", bad.to_str().unwrap()], &[]).await;
    assert!(
        message.contains("`quote-alerts` is a switch: true or false"),
        "{message}"
    );
}

#[tokio::test]
async fn secrets_come_from_files_and_port_from_the_platform() {
    let keys = file("keys", "ops:fr0m-a-file:*\nreader:s3cret:individual\n");
    let client_secret = file("client-secret", "demo-client-secret\n");
    let refresh_token = file("refresh-token", "demo-refresh-token\n");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let port_text = port.to_string();
    let mut gateway = spawn(
        &["--sim-rate", "0"],
        &[
            ("TTGW_API_KEYS_FILE", keys.to_str().unwrap()),
            ("TTGW_CLIENT_SECRET_FILE", client_secret.to_str().unwrap()),
            ("TTGW_REFRESH_TOKEN_FILE", refresh_token.to_str().unwrap()),
            ("PORT", &port_text),
        ],
    )
    .await;
    assert_eq!(
        gateway.url,
        format!("http://0.0.0.0:{port}"),
        "PORT is honoured"
    );
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let status = |key: Option<&'static str>| {
        let mut request = http.get(format!("{url}/v1/accounts"));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(None).await, 401, "keys from the file are enforced");
    assert_eq!(status(Some("fr0m-a-file")).await, 200);
    assert_eq!(status(Some("s3cret")).await, 200);
    gateway.child.kill().await.unwrap();

    // A wrong secret in the file reaches the upstream (and is refused there), so the file
    // really is what the gateway used.
    let wrong = file("wrong-secret", "not-the-demo-secret\n");
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_tastytrade-gateway"))
        .args(["--listen", "127.0.0.1:0", "--sim-rate", "0"])
        .env("TTGW_CLIENT_SECRET_FILE", &wrong)
        .env("TTGW_REFRESH_TOKEN_FILE", &refresh_token)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a wrong secret from the file must fail: {stderr}"
    );
    assert!(!stderr.contains("not-the-demo-secret"), "{stderr}");
    let missing = refused(
        &["--listen", "127.0.0.1:0"],
        &[("TTGW_PASSWORD_FILE", "/nonexistent/ttgw")],
    )
    .await;
    assert!(
        missing.contains("TTGW_PASSWORD_FILE: cannot read /nonexistent/ttgw"),
        "{missing}"
    );
}

/// A value for every key of the config file, as TOML, and what the merged settings must
/// then hold for it (`None`: a switch that must be on).
fn every_key(
    dir: &std::path::Path,
    oauth: bool,
) -> Vec<(&'static str, String, Option<Vec<&'static str>>)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, "not checked here").unwrap();
    std::fs::write(&key, "not checked here").unwrap();
    let (cert, key) = (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    );
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, "read at start, not here").unwrap();
    let jwks = jwks.to_str().unwrap().to_string();
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut keys = vec![
        (
            "listen",
            "\"127.0.0.1:0\"".into(),
            Some(vec!["127.0.0.1:0"]),
        ),
        ("upstream", "\"demo\"".into(), Some(vec!["demo"])),
        (
            "api-url",
            "\"http://127.0.0.1:9\"".into(),
            Some(vec!["http://127.0.0.1:9"]),
        ),
        (
            "streamer-url",
            "\"ws://127.0.0.1:9/streamer\"".into(),
            Some(vec!["ws://127.0.0.1:9/streamer"]),
        ),
        (
            "accounts",
            "[\"main=5WT31842\", \"5WU09822\"]".into(),
            Some(vec!["main=5WT31842", "5WU09822"]),
        ),
        ("quote-alerts", "true".into(), None),
        ("public-watchlists", "true".into(), None),
        ("user-messages", "true".into(), None),
        ("heartbeat-secs", "7".into(), Some(vec!["7"])),
        ("token-refresh-margin-secs", "30".into(), Some(vec!["30"])),
        ("reconcile-secs", "60".into(), Some(vec!["60"])),
        ("backoff-cap-secs", "3".into(), Some(vec!["3"])),
        ("upstream-attempts-per-sec", "20".into(), Some(vec!["20"])),
        ("upstream-rest-connections", "8".into(), Some(vec!["8"])),
        ("retry-after-cap-secs", "30".into(), Some(vec!["30"])),
        ("header-read-timeout-secs", "5".into(), Some(vec!["5"])),
        ("max-connections", "100".into(), Some(vec!["100"])),
        ("max-streams-per-client", "50".into(), Some(vec!["50"])),
        ("ready-requires", "\"all\"".into(), Some(vec!["all"])),
        ("metrics-require-key", "true".into(), None),
        (
            "metrics-listen",
            "\"127.0.0.1:0\"".into(),
            Some(vec!["127.0.0.1:0"]),
        ),
        ("insecure-open-api", "true".into(), None),
        (
            "api-key",
            "[\"ops:k3y:*\", \"reader:s3cret:main\"]".into(),
            Some(vec!["ops:k3y:*", "reader:s3cret:main"]),
        ),
        (
            "cors-origins",
            "[\"https://app.example.com\"]".into(),
            Some(vec!["https://app.example.com"]),
        ),
        (
            "tls-cert",
            format!("\"{cert}\""),
            Some(vec![leak(cert.clone())]),
        ),
        (
            "tls-key",
            format!("\"{key}\""),
            Some(vec![leak(key.clone())]),
        ),
        (
            "jwt-secret",
            "\"0123456789abcdef0123456789abcdef\"".into(),
            Some(vec!["0123456789abcdef0123456789abcdef"]),
        ),
        (
            "jwt-jwks",
            format!("\"{jwks}\""),
            Some(vec![leak(jwks.clone())]),
        ),
        (
            "jwt-algorithms",
            "[\"HS256\", \"RS256\"]".into(),
            Some(vec!["HS256", "RS256"]),
        ),
        ("jwt-leeway-secs", "10".into(), Some(vec!["10"])),
        ("jwt-audience", "\"gw\"".into(), Some(vec!["gw"])),
        (
            "jwt-issuer",
            "\"https://id.example\"".into(),
            Some(vec!["https://id.example"]),
        ),
        ("jwt-cookie", "\"gw_token\"".into(), Some(vec!["gw_token"])),
        ("jwt-jwks-refresh-secs", "60".into(), Some(vec!["60"])),
        ("jwt-jwks-min-refetch-secs", "5".into(), Some(vec!["5"])),
        ("jwt-expiry-notice-secs", "10".into(), Some(vec!["10"])),
        ("sse-keepalive-secs", "5".into(), Some(vec!["5"])),
        ("max-lag-ms", "2500".into(), Some(vec!["2500"])),
        ("compact-ids-above", "8".into(), Some(vec!["8"])),
        ("ring-max-age-secs", "600".into(), Some(vec!["600"])),
        ("subscriber-queue", "128".into(), Some(vec!["128"])),
        ("ring-events", "500".into(), Some(vec!["500"])),
        ("ring-max-bytes", "1048576".into(), Some(vec!["1048576"])),
        (
            "ring-budget-bytes",
            "268435456".into(),
            Some(vec!["268435456"]),
        ),
        ("log-format", "\"json\"".into(), Some(vec!["json"])),
        ("sim-rate", "0.5".into(), Some(vec!["0.5"])),
        ("sim-seed", "7".into(), Some(vec!["7"])),
        ("sim-accounts", "3".into(), Some(vec!["3"])),
        ("sim-rest-rate", "25.5".into(), Some(vec!["25.5"])),
        ("sim-token-ttl-secs", "120".into(), Some(vec!["120"])),
        (
            "nats-url",
            "[\"nats://127.0.0.1:4222\", \"nats://127.0.0.1:4223\"]".into(),
            Some(vec!["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]),
        ),
        ("nats-user", "\"gw\"".into(), Some(vec!["gw"])),
        ("nats-password", "\"n4ts\"".into(), Some(vec!["n4ts"])),
        ("nats-token", "\"t0ken\"".into(), Some(vec!["t0ken"])),
        (
            "nats-tls-ca",
            format!("\"{cert}\""),
            Some(vec![leak(cert.clone())]),
        ),
        ("nats-prefix", "\"desk_1\"".into(), Some(vec!["desk_1"])),
        ("nats-replicas", "3".into(), Some(vec!["3"])),
        ("nats-history-events", "5000".into(), Some(vec!["5000"])),
        ("nats-history-secs", "7200".into(), Some(vec!["7200"])),
        ("lease-ttl-secs", "9".into(), Some(vec!["9"])),
        ("node-id", "\"gw-a\"".into(), Some(vec!["gw-a"])),
    ];
    if oauth {
        keys.push((
            "client-secret",
            "\"c-secret\"".into(),
            Some(vec!["c-secret"]),
        ));
        keys.push(("refresh-token", "\"r-token\"".into(), Some(vec!["r-token"])));
    } else {
        keys.push(("login", "\"someone\"".into(), Some(vec!["someone"])));
        keys.push(("password", "\"p4ss\"".into(), Some(vec!["p4ss"])));
    }
    keys
}

#[test]
fn every_key_works_from_the_file_switches_and_lists_included() {
    use clap::Args;
    let command = tastytrade_gateway::config::ServeArgs::augment_args(clap::Command::new("gw"));
    let dir = std::env::temp_dir().join(format!("ttgw-every-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for oauth in [true, false] {
        let keys = every_key(&dir, oauth);
        // The table covers every flag: a new flag without a value here fails this test.
        let covered: Vec<&str> = keys.iter().map(|(k, _, _)| *k).collect();
        let uncovered: Vec<String> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|long| *long != "config" && !covered.contains(long))
            .filter(|long| !["client-secret", "refresh-token", "login", "password"].contains(long))
            .map(str::to_string)
            .collect();
        assert!(
            uncovered.is_empty(),
            "keys without a test value: {uncovered:?}"
        );
        let text: String = keys
            .iter()
            .map(|(k, v, _)| format!("{k} = {v}\n"))
            .collect();
        let path = dir.join(format!("every-{oauth}.toml"));
        std::fs::write(&path, &text).unwrap();
        let matches = command
            .clone()
            .try_get_matches_from(["gw", "--config", path.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let layered = tastytrade_gateway::config::Layered::read(&command, &matches)
            .unwrap_or_else(|e| panic!("the file reads: {e}\n{text}"));
        for (key, _, expected) in &keys {
            let (got, layer) = layered
                .value(key)
                .unwrap_or_else(|| panic!("{key} not set from the file"));
            assert!(layer.starts_with("config file "), "{key} came from {layer}");
            match expected {
                None => assert_eq!(got, vec!["true"], "{key} = true must switch it on"),
                Some(expected) => assert_eq!(got, *expected, "{key}"),
            }
        }
        let serve = layered
            .extract()
            .unwrap_or_else(|e| panic!("every key is typed: {e}\n{text}"));
        let config = tastytrade_gateway::config::Config::from_args(serve)
            .unwrap_or_else(|e| panic!("every key together is a valid configuration: {e}"));
        assert_eq!(config.heartbeat, std::time::Duration::from_secs(7));
        assert_eq!(config.accounts.len(), 2);
        assert!(config.quote_alerts && config.metrics_require_key && config.insecure_open_api);
        assert_eq!(config.ring_max_bytes, 1 << 20);
        assert_eq!(config.ring_budget_bytes, 256 << 20);
        assert!(config.tls.is_some());
        let jwt = config.jwt.expect("tokens configured");
        assert_eq!((jwt.algorithms.len(), jwt.cookie.as_str()), (2, "gw_token"));
        let cluster = config.cluster.expect("a cluster configured");
        assert_eq!(cluster.urls.len(), 2);
        assert_eq!(
            (cluster.prefix.as_str(), cluster.node_id.as_str()),
            ("desk_1", "gw-a")
        );
        assert_eq!((cluster.replicas, cluster.lease_ttl.as_secs()), (3, 9));
    }
}

/// The layers merge in order (defaults < file < flags), each value says which layer gave it,
/// and one typed read serves them all: a wrong type names the setting and its layer.
#[test]
fn layers_merge_in_order_and_errors_name_their_layer() {
    use clap::Args;
    let command = tastytrade_gateway::config::ServeArgs::augment_args(clap::Command::new("gw"));
    let dir = std::env::temp_dir().join(format!("ttgw-layers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("layers.toml");
    std::fs::write(&path, "heartbeat-secs = 9\nsim-rate = \"0.5\"\n").unwrap();
    let path = path.to_str().unwrap();
    let read = |argv: &[&str]| {
        let matches = command
            .clone()
            .try_get_matches_from(std::iter::once("gw").chain(argv.iter().copied()))
            .unwrap();
        tastytrade_gateway::config::Layered::read(&command, &matches).unwrap()
    };
    let layered = read(&["--config", path, "--sim-seed", "3"]);
    let from = |key: &str| layered.value(key).unwrap();
    assert_eq!(
        from("heartbeat-secs"),
        (vec!["9".to_string()], format!("config file {path}"))
    );
    assert_eq!(from("sim-seed").1, "flags and TTGW_* environment variables");
    assert_eq!(from("reconcile-secs").1, "defaults");
    let args = layered.extract().unwrap();
    assert_eq!((args.heartbeat_secs, args.sim_seed), (9, 3));
    assert_eq!(
        args.sim_rate, 0.5,
        "a number given as text reads as the number"
    );

    let over = read(&["--config", path, "--heartbeat-secs", "11"]);
    assert_eq!(
        over.extract().unwrap().heartbeat_secs,
        11,
        "a flag wins over the file"
    );

    std::fs::write(dir.join("bad.toml"), "ring-events = \"many\"\n").unwrap();
    let bad = read(&["--config", dir.join("bad.toml").to_str().unwrap()]);
    let error = bad
        .extract()
        .err()
        .expect("a word is no number")
        .to_string();
    assert!(
        error.starts_with("ring-events: ")
            && error.contains("(from config file ")
            && error.ends_with("the flag is --ring-events)"),
        "{error}"
    );
}
