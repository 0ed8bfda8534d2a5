//! The `tastytrade-gateway` binary: `serve` (the default, demo mode without credentials),
//! `simulate` (the simulator alone) and `openapi` (print the OpenAPI document).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use tastytrade_gateway::config::{self, Config, Endpoints, LogFormat, ServeArgs};
use tastytrade_gateway::sim::{self, SimConfig};
use tastytrade_gateway::{api, startup, telemetry};

/// Every upstream event becomes a JSON tree that is masked, compared, stored and
/// serialised: a third of ingest's instructions were glibc malloc/free. mimalloc makes the
/// whole frame -> published pipeline ~25% cheaper (bench/criterion/ingest.rs).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "tastytrade-gateway",
    version,
    about = "Live tastytrade account data as REST snapshots and resumable SSE",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the gateway (the default).
    Serve(Box<ServeArgs>),
    /// Run the tastytrade simulator alone.
    Simulate(SimulateArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Exit 0 when the gateway at --url answers 200 (the Docker HEALTHCHECK: no curl needed).
    Healthcheck(HealthcheckArgs),
}

#[derive(Args)]
struct HealthcheckArgs {
    /// The URL to ask; default: /livez on the port of TTGW_LISTEN (or PORT), on 127.0.0.1.
    #[arg(long)]
    url: Option<String>,
}

/// Asks the gateway whether it is alive, within 3 s.
async fn healthcheck(args: HealthcheckArgs) -> ExitCode {
    let url = args.url.unwrap_or_else(|| {
        let port = std::env::var("TTGW_LISTEN")
            .ok()
            .and_then(|listen| listen.parse::<SocketAddr>().ok())
            .map(|addr| addr.port())
            .or_else(|| std::env::var("PORT").ok().and_then(|p| p.parse().ok()))
            .unwrap_or(8080);
        format!("http://127.0.0.1:{port}/livez")
    });
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("healthcheck: {error}");
            return ExitCode::FAILURE;
        }
    };
    match client.get(&url).send().await {
        Ok(response) if response.status().is_success() => ExitCode::SUCCESS,
        Ok(response) => {
            eprintln!("healthcheck: {url} answered {}", response.status());
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("healthcheck: {url}: {}", error.without_url());
            ExitCode::FAILURE
        }
    }
}

#[derive(Args)]
struct SimulateArgs {
    /// Address to serve the simulator on.
    #[arg(long, env = "TTGW_SIM_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Market script steps per second (0 pauses it).
    #[arg(long, env = "TTGW_SIM_RATE", default_value_t = 2.0)]
    rate: f64,
    /// Seed of the market script.
    #[arg(long, env = "TTGW_SIM_SEED", default_value_t = 42)]
    seed: u64,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, env = "TTGW_SIM_TOKEN_TTL_SECS", default_value_t = 900)]
    token_ttl_secs: u64,
    /// Seconds of silence after which a streamer socket is closed.
    #[arg(long, env = "TTGW_SIM_HEARTBEAT_WINDOW_SECS", default_value_t = 60)]
    heartbeat_window_secs: u64,
    /// Generated accounts served beside the three demo accounts.
    #[arg(long, env = "TTGW_SIM_ACCOUNTS", default_value_t = 0)]
    accounts: usize,
    /// Account REST calls per second answered, like a broker's rate limit (beyond it 429
    /// with `Retry-After`); 0 for none.
    #[arg(long, env = "TTGW_SIM_REST_RATE", default_value_t = 0.0)]
    rest_rate: f64,
}

async fn terminated() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn serve(args: ServeArgs) -> ExitCode {
    let config = match Config::from_args(args) {
        Ok(config) => config,
        Err(error) => {
            eprintln!(
                "tastytrade-gateway: invalid setting {}",
                tastytrade_gateway::mask::diagnostic(&error.to_string())
            );
            return ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    let json = config.log_format == tastytrade_gateway::config::LogFormat::Json;
    let demo = matches!(config.endpoints, Endpoints::EmbeddedSimulator);
    let open = config.api_keys.is_empty() && config.jwt.is_none();
    let gateway = match startup::start(config).await {
        Ok(gateway) => gateway,
        Err(error) => {
            let error = tastytrade_gateway::mask::diagnostic(&error.to_string());
            if json {
                println!(
                    "{}",
                    serde_json::json!({"level": "ERROR", "message": format!("tastytrade-gateway: {error}")})
                );
            } else {
                eprintln!("tastytrade-gateway: {error}");
            }
            return ExitCode::FAILURE;
        }
    };
    if json {
        banner_json(&gateway, demo && open);
    } else {
        banner(&gateway, demo && open);
    }
    terminated().await;
    if json {
        println!(
            "{}",
            serde_json::json!({"level": "INFO", "target": "tastytrade_gateway", "message": "tastytrade-gateway: shutting down"})
        );
    } else {
        println!("tastytrade-gateway: shutting down");
    }
    if tokio::time::timeout(Duration::from_secs(10), gateway.shutdown())
        .await
        .is_err()
    {
        eprintln!("tastytrade-gateway: shutdown took too long; exiting");
    }
    telemetry::flush();
    ExitCode::SUCCESS
}

async fn simulate(args: SimulateArgs) -> ExitCode {
    telemetry::init(LogFormat::Pretty);
    let config = SimConfig {
        listen: args.listen,
        rate: args.rate,
        seed: args.seed,
        token_ttl: Duration::from_secs(args.token_ttl_secs.max(1)),
        heartbeat_window: Duration::from_secs(args.heartbeat_window_secs.max(1)),
        extra_accounts: args.accounts.min(100_000),
        rest_rate: if args.rest_rate.is_finite() {
            args.rest_rate.max(0.0)
        } else {
            0.0
        },
        ..SimConfig::default()
    };
    let handle = match sim::start(config).await {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!(
                "tastytrade-gateway simulate: could not listen on {}: {error}",
                args.listen
            );
            return ExitCode::FAILURE;
        }
    };
    println!("tastytrade simulator on {}", handle.api_url());
    println!("  REST:     {}", handle.api_url());
    println!("  streamer: {}", handle.streamer_url());
    println!("  control:  {}/sim/", handle.api_url());
    terminated().await;
    handle.shutdown().await;
    ExitCode::SUCCESS
}

/// Parses the command line; for `serve`, merges its settings from every layer (defaults,
/// `--config FILE`, `*_FILE` secrets and `PORT`, flags and `TTGW_*` variables).
fn parse_cli() -> Result<Cli, String> {
    let command = Cli::command();
    let matches = command.clone().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
    let (serve_command, serve_matches) = match &cli.command {
        None => (&command, &matches),
        Some(Command::Serve(_)) => match (
            command.find_subcommand("serve"),
            matches.subcommand_matches("serve"),
        ) {
            (Some(c), Some(m)) => (c, m),
            _ => (&command, &matches),
        },
        _ => return Ok(cli),
    };
    let args = config::Layered::read(serve_command, serve_matches)
        .and_then(|layered| layered.extract())
        .map_err(|e| format!("invalid setting {e}"))?;
    match &mut cli.command {
        Some(Command::Serve(serve)) => **serve = args,
        _ => cli.serve = args,
    }
    Ok(cli)
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(error) => {
            eprintln!("tastytrade-gateway: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tastytrade-gateway: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        None => runtime.block_on(serve(cli.serve)),
        Some(Command::Serve(args)) => runtime.block_on(serve(*args)),
        Some(Command::Simulate(args)) => runtime.block_on(simulate(args)),
        Some(Command::Healthcheck(args)) => runtime.block_on(healthcheck(args)),
        Some(Command::Openapi) => match serde_json::to_string_pretty(&api::openapi()) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("tastytrade-gateway openapi: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The first-run lines: where the dashboard, the docs and the streams are.
fn banner(gateway: &startup::Gateway, open_demo: bool) {
    let url = gateway.url();
    let first = gateway
        .registry
        .all()
        .first()
        .map(|a| a.info.public_id.clone())
        .unwrap_or_default();
    println!(
        "tastytrade-gateway is serving {} account(s) on {url}",
        gateway.registry.all().len()
    );
    if let Some(sim) = &gateway.sim {
        println!(
            "  demo mode: embedded tastytrade simulator at {} (control API: {}/sim/)",
            sim.api_url(),
            sim.api_url()
        );
    }
    if open_demo {
        println!("  demo mode on loopback runs without consumer auth");
    }
    println!("  dashboard:   {url}/");
    println!("  API docs:    {url}/docs");
    println!("  accounts:    curl -s {url}/v1/accounts");
    println!("  snapshot:    curl -s {url}/v1/accounts/{first}/snapshot");
    println!("  live events: curl -N {url}/v1/accounts/{first}/events");
}

/// The same facts as one JSON log line (with `--log-format json` every line is JSON).
fn banner_json(gateway: &startup::Gateway, open_demo: bool) {
    let url = gateway.url();
    let line = serde_json::json!({
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "level": "INFO",
        "target": "tastytrade_gateway",
        "message": format!("tastytrade-gateway is serving {} account(s) on {url}", gateway.registry.all().len()),
        "url": url,
        "simulator": gateway.sim.as_ref().map(|sim| sim.api_url()),
        "open": open_demo,
    });
    println!("{line}");
}
