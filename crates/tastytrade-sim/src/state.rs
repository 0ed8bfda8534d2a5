//! The simulator's shared state: each account's truth (what tastytrade's REST would answer),
//! issued tokens, armed faults, counters, and the router that carries frames to streamer sockets.
//! Every change to the truth is published while the lock is held, so the order on the wire is
//! the order of the truth.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::SimConfig;
use super::demo_data;
use super::wire::{self, id_text};

/// Who a notification is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Channel {
    Account(String),
    QuoteAlerts,
    PublicWatchlists,
    UserMessages,
}

/// Faults played by streamer sockets (each socket decides whether it is targeted).
#[derive(Clone, Debug)]
pub enum SocketFault {
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Close with `1000 Bye`, as tastytrade was seen to (or with another reason).
    CloseBye { reason: String },
    /// Send a frame that is not valid JSON.
    Malformed,
    /// Send one valid notification of about `bytes` bytes, optionally in many fragments.
    Oversized { bytes: usize, fragmented: bool },
}

/// What travels from the truth to the sockets.
#[derive(Clone, Debug)]
pub enum Outbound {
    Notify {
        channel: Channel,
        text: Arc<str>,
    },
    Fault {
        account: Option<String>,
        fault: SocketFault,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Session,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Valid,
    Expired,
    Invalid,
}

/// REST faults armed through the control API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RestFaults {
    pub errors_remaining: u32,
    pub error_status: u16,
    pub retry_after_secs: u64,
    pub latency_ms: u64,
}

/// The market script's knobs.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ScriptSettings {
    pub paused: bool,
    pub rate: f64,
}

/// One account as tastytrade knows it.
#[derive(Clone, Debug)]
pub struct SimAccount {
    pub account: Value,
    pub number: String,
    pub closed: bool,
    pub balance: Value,
    pub positions: Vec<Value>,
    pub orders: Vec<Value>,
    pub complex_orders: Vec<Value>,
    pub trading_status: Value,
}

impl SimAccount {
    /// What the control API returns as the truth of this account.
    pub fn truth(&self) -> Value {
        json!({
            "account-number": self.number,
            "balance": self.balance,
            "positions": self.positions,
            "orders": self.orders,
            "complex-orders": self.complex_orders,
            "trading-status": self.trading_status,
        })
    }

    /// Applies a full-object event to the truth; returns whether the type is part of it.
    pub fn apply(&mut self, kind: &str, data: &Value) -> bool {
        match kind {
            "Order" => upsert(&mut self.orders, data, |o| id_text(o.get("id"))),
            "ComplexOrder" => upsert(&mut self.complex_orders, data, |o| id_text(o.get("id"))),
            "CurrentPosition" => {
                let key = position_key(data);
                let closed = data.get("quantity-direction").and_then(Value::as_str) == Some("Zero")
                    || wire::decimal(data.get("quantity")).is_zero();
                if closed {
                    self.positions.retain(|p| position_key(p) != key);
                } else {
                    upsert(&mut self.positions, data, |p| Some(position_key(p)));
                }
            }
            "AccountBalance" => self.balance = data.clone(),
            "TradingStatus" => self.trading_status = data.clone(),
            _ => return false,
        }
        true
    }
}

pub fn position_key(position: &Value) -> String {
    format!(
        "{}|{}",
        position
            .get("symbol")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        position
            .get("instrument-type")
            .and_then(Value::as_str)
            .unwrap_or_default()
    )
}

fn upsert(list: &mut Vec<Value>, item: &Value, key: impl Fn(&Value) -> Option<String>) {
    let wanted = key(item);
    match list.iter_mut().find(|existing| key(existing) == wanted) {
        Some(existing) => *existing = item.clone(),
        None => list.push(item.clone()),
    }
}

/// Everything behind the simulator's one lock.
pub struct SimState {
    pub accounts: Vec<SimAccount>,
    pub tokens: HashMap<String, (TokenKind, Instant)>,
    pub rest_faults: RestFaults,
    pub silent: bool,
    /// Until when tastytrade is down: REST and streamer handshakes answer 503.
    pub outage_until: Option<Instant>,
    /// Until when one account's REST calls answer 503 (an outage of that account alone).
    pub account_outages: HashMap<String, Instant>,
    pub rng: StdRng,
    pub next_order_id: u64,
    pub next_fill_id: u64,
    pub next_misc_id: u64,
    last_updated_ms: i64,
}

impl SimState {
    pub fn account_mut(&mut self, number: &str) -> Option<&mut SimAccount> {
        self.accounts.iter_mut().find(|a| a.number == number)
    }

    pub fn account(&self, number: &str) -> Option<&SimAccount> {
        self.accounts.iter().find(|a| a.number == number)
    }

    /// An `updated-at` in epoch milliseconds that never goes backwards, so "newer wins" holds.
    pub fn next_updated_ms(&mut self) -> i64 {
        let now = chrono::Utc::now().timestamp_millis();
        self.last_updated_ms = now.max(self.last_updated_ms + 1);
        self.last_updated_ms
    }

    /// The same instant as an ISO string (positions and balances carry ISO `updated-at`).
    pub fn next_updated_iso(&mut self) -> String {
        let ms = self.next_updated_ms();
        let ts = chrono::DateTime::from_timestamp_millis(ms).unwrap_or_else(chrono::Utc::now);
        wire::iso(ts)
    }
}

/// Counters the control API reports (`GET /sim/stats`).
#[derive(Debug, Default, Serialize)]
pub struct SimStats {
    pub rest_calls: AtomicU64,
    pub streamer_connections: AtomicU64,
    pub streamer_open: AtomicU64,
    pub messages_received: AtomicU64,
    pub heartbeats: AtomicU64,
    pub heartbeats_too_fast: AtomicU64,
    pub failed_auth_messages: AtomicU64,
    pub expired_token_messages: AtomicU64,
    /// Error replies sent (`failed`, `not-implemented`, `connect-not-completed`).
    pub error_replies: AtomicU64,
    pub idle_closes: AtomicU64,
    pub notifications_sent: AtomicU64,
    pub tokens_issued: AtomicU64,
    /// Account REST calls answered 429 by the rate limit (`rest_rate`).
    pub rest_rate_limited: AtomicU64,
    /// `connect`s for an account another open socket already had: two holders at once.
    pub account_socket_overlaps: AtomicU64,
}

impl SimStats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The simulator: configuration, state, router and script settings, shared by every handler.
pub struct Sim {
    pub config: SimConfig,
    state: Mutex<SimState>,
    /// Where notifications and faults go: the sockets that want them.
    pub router: crate::router::Router,
    pub stats: SimStats,
    /// When each streamer handshake and account REST call came (ms since the simulator
    /// started, and which), the latest 100,000: `GET /sim/attempts`.
    pub attempts: Mutex<std::collections::VecDeque<(u64, &'static str)>>,
    /// Open streamer sockets per account number that `connect`ed it (`GET /sim/sockets`).
    pub sockets: Mutex<std::collections::BTreeMap<String, u32>>,
    started: Instant,
    pub stop: watch::Receiver<bool>,
    pub script: watch::Sender<ScriptSettings>,
    /// The account REST rate limit, when `rest_rate` sets one.
    pub rest_limit: Option<crate::rate_limit::RestRateLimit>,
}

impl Sim {
    pub fn new(config: SimConfig, stop: watch::Receiver<bool>) -> Self {
        let mut rng = StdRng::seed_from_u64(config.seed);
        let mut accounts = demo_data::accounts(&mut rng, config.numeric_user_ids);
        accounts.extend(demo_data::generated_accounts(
            &mut rng,
            config.extra_accounts,
        ));
        let rest_limit = crate::rate_limit::RestRateLimit::new(config.rest_rate);
        let script = watch::channel(ScriptSettings {
            paused: config.paused,
            rate: config.rate,
        })
        .0;
        Self {
            state: Mutex::new(SimState {
                accounts,
                tokens: HashMap::new(),
                rest_faults: RestFaults::default(),
                silent: false,
                outage_until: None,
                account_outages: HashMap::new(),
                rng,
                next_order_id: 301_000,
                next_fill_id: 1,
                next_misc_id: 9_000,
                last_updated_ms: 0,
            }),
            config,
            router: crate::router::Router::default(),
            stats: SimStats::default(),
            attempts: Mutex::default(),
            sockets: Mutex::default(),
            started: Instant::now(),
            rest_limit,
            stop,
            script,
        }
    }

    /// Records a streamer handshake (`streamer`) or an account REST call (`rest`).
    pub fn record_attempt(&self, what: &'static str) {
        let at = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        if attempts.len() == 100_000 {
            attempts.pop_front();
        }
        attempts.push_back((at, what));
    }

    /// Whether an outage fault is in force for a request on `path` (a REST path, or
    /// `/streamer`).
    pub fn in_outage(&self, path: &str) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        state.account_outages.retain(|_, until| now < *until);
        if state.outage_until.is_some_and(|until| now >= until) {
            state.outage_until = None;
        }
        let account_down = path
            .strip_prefix("/accounts/")
            .and_then(|rest| rest.split('/').next())
            .is_some_and(|number| state.account_outages.contains_key(number));
        state.outage_until.is_some() || account_down
    }

    /// The lock around the truth. Held briefly; never across an await.
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends a frame or fault to the sockets it concerns (each filters as well).
    pub fn publish(&self, outbound: Outbound) {
        self.router.send(outbound);
    }

    /// Applies account events to the truth and publishes them, single or as one `results` batch.
    /// Call with the state lock held so the wire order equals the truth order.
    pub fn emit_account(
        &self,
        state: &mut SimState,
        number: &str,
        events: Vec<(String, Value)>,
        batch: bool,
    ) {
        let Some(account) = state.account_mut(number) else {
            return;
        };
        let mut frames = Vec::with_capacity(events.len());
        for (kind, data) in &events {
            account.apply(kind, data);
            frames.push(wire::notification(kind, data));
        }
        let channel = Channel::Account(number.to_string());
        if batch && frames.len() > 1 {
            let text = json!({ "results": frames }).to_string();
            self.publish(Outbound::Notify {
                channel,
                text: text.into(),
            });
        } else {
            for frame in frames {
                self.publish(Outbound::Notify {
                    channel: channel.clone(),
                    text: frame.to_string().into(),
                });
            }
        }
    }

    /// Mints a token of `kind` valid for `ttl`.
    pub fn issue_token(&self, kind: TokenKind, ttl: Duration) -> String {
        let mut state = self.lock();
        let random: [u8; 16] = state.rng.random();
        let prefix = match kind {
            TokenKind::Access => "simat",
            TokenKind::Session => "simst",
        };
        let token = format!("{prefix}{}", hex::encode(random));
        state
            .tokens
            .insert(token.clone(), (kind, Instant::now() + ttl));
        SimStats::bump(&self.stats.tokens_issued);
        token
    }

    /// Checks an `Authorization` header or streamer `auth-token`: `Bearer <access token>`
    /// for OAuth, the raw session token for sessions; anything else is invalid.
    pub fn check_token(&self, presented: &str) -> TokenCheck {
        let (token, wanted) = match presented.strip_prefix("Bearer ") {
            Some(token) => (token, TokenKind::Access),
            None => (presented, TokenKind::Session),
        };
        let state = self.lock();
        match state.tokens.get(token) {
            Some((kind, expires)) if *kind == wanted => {
                if Instant::now() < *expires {
                    TokenCheck::Valid
                } else {
                    TokenCheck::Expired
                }
            }
            _ => TokenCheck::Invalid,
        }
    }

    /// Expires every token issued so far (the `expire-tokens` fault).
    pub fn expire_all_tokens(&self) {
        let now = Instant::now();
        for (_, expires) in self.lock().tokens.values_mut() {
            *expires = now;
        }
    }

    /// A socket `connect`ed `account` (counted once per socket).
    pub fn socket_opened(&self, account: &str) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        let open = sockets.entry(account.to_string()).or_default();
        if *open > 0 {
            SimStats::bump(&self.stats.account_socket_overlaps);
        }
        *open += 1;
    }

    /// A socket that had `connect`ed `account` ended.
    pub fn socket_closed(&self, account: &str) {
        let mut sockets = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(open) = sockets.get_mut(account) {
            *open = open.saturating_sub(1);
        }
    }

    pub fn stats_json(&self) -> Value {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let s = &self.stats;
        json!({
            "rest_calls": load(&s.rest_calls),
            "rest_rate_limited": load(&s.rest_rate_limited),
            "streamer_connections": load(&s.streamer_connections),
            "streamer_open": load(&s.streamer_open),
            "messages_received": load(&s.messages_received),
            "heartbeats": load(&s.heartbeats),
            "heartbeats_too_fast": load(&s.heartbeats_too_fast),
            "failed_auth_messages": load(&s.failed_auth_messages),
            "expired_token_messages": load(&s.expired_token_messages),
            "error_replies": load(&s.error_replies),
            "idle_closes": load(&s.idle_closes),
            "notifications_sent": load(&s.notifications_sent),
            "tokens_issued": load(&s.tokens_issued),
            "account_socket_overlaps": load(&s.account_socket_overlaps),
        })
    }
}

/// Resolves once the simulator is stopping (the `watch::Ref` never escapes, so callers stay `Send`).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}
