//! The simulator's Account Streamer WebSocket (`/streamer`): the `connect` / `heartbeat` /
//! subscribe actions with tastytrade's acks and errors (shared/protocol §1.3-§1.5), the token
//! check on every message, the idle window, and the socket-level faults. It speaks raw
//! tungstenite (via a hyper upgrade) so it can send fragmented frames as a fault.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use rand::Rng;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{CloseFrame, Frame};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::state::{Channel, Outbound, Sim, SimStats, SocketFault, TokenCheck, stopped};
use super::wire::{ack, action_error, iso_now, notification};

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/streamer", get(upgrade))
        .with_state(sim)
}

/// Answers the WebSocket handshake by hand and hands the upgraded connection to a socket task.
async fn upgrade(State(sim): State<Arc<Sim>>, mut request: Request) -> Response {
    sim.record_attempt("streamer");
    if sim.in_outage("/streamer") {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "tastytrade is down (simulated outage)",
        )
            .into_response();
    }
    let is_upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = request.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return (
            StatusCode::BAD_REQUEST,
            "the Account Streamer speaks WebSocket only",
        )
            .into_response();
    };
    if !is_upgrade {
        return (
            StatusCode::BAD_REQUEST,
            "the Account Streamer speaks WebSocket only",
        )
            .into_response();
    }
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                // Small frames: a 128 KiB read buffer zeroed on every read would make the
                // simulator, not the gateway, the cost at thousands of sockets.
                let config = WebSocketConfig::default()
                    .read_buffer_size(4 * 1024)
                    .max_message_size(Some(16 << 20));
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                run_socket(sim, socket).await;
            }
            Err(error) => tracing::debug!(%error, "streamer upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// What one socket has subscribed to.
struct Subscriptions {
    session_id: String,
    connected: bool,
    accounts: BTreeSet<String>,
    quote_alerts: bool,
    public_watchlists: bool,
    user_messages: bool,
    last_heartbeat: Option<Instant>,
}

impl Subscriptions {
    fn wants(&self, channel: &Channel) -> bool {
        match channel {
            Channel::Account(number) => self.accounts.contains(number),
            Channel::QuoteAlerts => self.quote_alerts,
            Channel::PublicWatchlists => self.public_watchlists,
            Channel::UserMessages => self.user_messages,
        }
    }
}

/// How a socket ends: with a close handshake, or by dropping the TCP connection.
enum End {
    Close(Option<CloseFrame>),
    Drop,
}

struct OpenGauge<'a>(&'a SimStats);
impl Drop for OpenGauge<'_> {
    fn drop(&mut self) {
        self.0
            .streamer_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn run_socket(sim: Arc<Sim>, mut socket: Socket) {
    SimStats::bump(&sim.stats.streamer_connections);
    SimStats::bump(&sim.stats.streamer_open);
    let _gauge = OpenGauge(&sim.stats);
    let session_id = format!("{:08x}", sim.lock().rng.random::<u32>());
    let mut subs = Subscriptions {
        session_id,
        connected: false,
        accounts: BTreeSet::new(),
        quote_alerts: false,
        public_watchlists: false,
        user_messages: false,
        last_heartbeat: None,
    };
    let (inbox_id, mut inbox) = sim.router.subscribe();
    let mut stop = sim.stop.clone();
    let window = sim.config.heartbeat_window;
    let mut idle_deadline = Instant::now() + window;

    let end = loop {
        tokio::select! {
            incoming = socket.next() => match incoming {
                None | Some(Err(_)) => break End::Drop,
                Some(Ok(Message::Text(text))) => {
                    let (replies, active) = handle_action(&sim, &mut subs, text.as_str());
                    sim.router.route(inbox_id, &subs.accounts);
                    if active {
                        idle_deadline = Instant::now() + window;
                    }
                    let mut failed = false;
                    for reply in replies {
                        if send(&sim, &mut socket, Message::text(reply)).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed {
                        break End::Drop;
                    }
                }
                Some(Ok(Message::Ping(_))) => {
                    if sim.config.pings_count_as_heartbeat {
                        idle_deadline = Instant::now() + window;
                    }
                    // tungstenite queued the pong; flush it now.
                    if socket.flush().await.is_err() {
                        break End::Drop;
                    }
                }
                Some(Ok(Message::Close(_))) => break End::Close(None),
                Some(Ok(_)) => {}
            },
            outbound = inbox.recv() => match outbound {
                Some(outbound) => match &*outbound {
                    Outbound::Notify { channel, text } => {
                        if subs.wants(channel) && !sim.lock().silent {
                            if send(&sim, &mut socket, Message::text(text.to_string())).await.is_err() {
                                break End::Drop;
                            }
                            SimStats::bump(&sim.stats.notifications_sent);
                        }
                    }
                    Outbound::Fault { account, fault } => {
                        let targeted = account.as_ref().is_none_or(|a| subs.accounts.contains(a));
                        if targeted && let Some(end) = play_fault(&sim, &mut socket, &subs, fault).await {
                            break end;
                        }
                    }
                },
                None => {
                    tracing::warn!("simulator streamer socket fell behind; closing it");
                    break End::Close(Some(CloseFrame { code: CloseCode::Policy, reason: "slow consumer".into() }));
                }
            },
            _ = tokio::time::sleep_until(idle_deadline) => {
                SimStats::bump(&sim.stats.idle_closes);
                break End::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "Bye".into() }));
            }
            _ = stopped(&mut stop) => {
                break End::Close(Some(CloseFrame { code: CloseCode::Away, reason: "Server shutting down".into() }));
            }
        }
    };
    sim.router.remove(inbox_id);
    for account in &subs.accounts {
        sim.socket_closed(account);
    }
    if let End::Close(frame) = end {
        let _ = socket.close(frame).await;
        // Finish the close handshake, but never wait on a peer that will not answer.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Some(Ok(_)) = socket.next().await {}
        })
        .await;
    }
}

/// Sends one message, after the armed latency.
async fn send(sim: &Sim, socket: &mut Socket, message: Message) -> Result<(), ()> {
    let latency = sim.lock().rest_faults.latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    socket.send(message).await.map_err(|_| ())
}

/// Plays a socket fault; returns how the socket ends, if it does.
async fn play_fault(
    sim: &Sim,
    socket: &mut Socket,
    subs: &Subscriptions,
    fault: &SocketFault,
) -> Option<End> {
    match fault {
        SocketFault::Drop => Some(End::Drop),
        SocketFault::CloseBye { reason } => Some(End::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: reason.clone().into(),
        }))),
        SocketFault::Malformed => {
            let junk = r#"{"type":"Order","data":{"id":27,"account-number":"#;
            send(sim, socket, Message::text(junk))
                .await
                .err()
                .map(|_| End::Drop)
        }
        SocketFault::Oversized { bytes, fragmented } => {
            let account = subs.accounts.iter().next()?.clone();
            let text = oversized_order_chain(&account, *bytes);
            let result = if *fragmented {
                send_fragmented(socket, text).await
            } else {
                send(sim, socket, Message::text(text)).await
            };
            SimStats::bump(&sim.stats.notifications_sent);
            result.err().map(|_| End::Drop)
        }
    }
}

/// Sends one text message as many 16 KiB fragments (pitfall 19).
async fn send_fragmented(socket: &mut Socket, text: String) -> Result<(), ()> {
    let bytes = text.into_bytes();
    let chunks: Vec<&[u8]> = bytes.chunks(16 * 1024).collect();
    let last = chunks.len().saturating_sub(1);
    for (index, chunk) in chunks.iter().enumerate() {
        let opcode = if index == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let frame = Frame::message(chunk.to_vec(), opcode, index == last);
        socket.feed(Message::Frame(frame)).await.map_err(|_| ())?;
    }
    socket.flush().await.map_err(|_| ())
}

/// A valid `OrderChain` notification of at least `bytes` bytes (large trade chains happen).
fn oversized_order_chain(account: &str, bytes: usize) -> String {
    let node = json!({
        "node-type": "order", "id": "node", "description": "Roll", "occurred-at": iso_now(),
        "total-fees": "1.26", "total-fees-effect": "Debit", "total-fill-cost": "2.5", "total-fill-cost-effect": "Debit",
        "gcd-quantity": "1", "fill-cost-per-quantity": "2.5", "fill-cost-per-quantity-effect": "Debit",
        "order-fill-count": 2, "roll": true,
        "legs": [{"symbol": "SPY   270115C00600000", "instrument-type": "Equity Option", "action": "Buy to Open", "fill-quantity": "1", "order-quantity": "1"}],
        "entries": [],
    });
    let node_len = node.to_string().len() + 1;
    let count = bytes / node_len + 1;
    let nodes: Vec<Value> = (0..count)
        .map(|i| {
            let mut n = node.clone();
            n["id"] = json!(format!("node-{i}"));
            n
        })
        .collect();
    let data = json!({
        "id": "145048656", "account-number": account, "description": "Calendar", "underlying-symbol": "SPY",
        "created-at": iso_now(), "updated-at": iso_now(),
        "computed-data": {"open": true, "total-fees": "1.26", "total-fees-effect": "Debit", "roll-count": count},
        "lite-nodes-sizes": count, "lite-nodes": nodes,
    });
    notification("OrderChain", &data).to_string()
}

/// The account numbers a `connect` names: an array, or a bare string (the JS SDK's single account).
fn connect_accounts(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// An error reply, counted in `error_replies`.
fn refuse(
    sim: &Sim,
    action: &str,
    session_id: &str,
    message: &str,
    request_id: Option<&Value>,
) -> String {
    SimStats::bump(&sim.stats.error_replies);
    action_error(action, session_id, message, request_id)
}

/// Handles one client message; returns the frames to send back and whether it counts as activity.
fn handle_action(sim: &Sim, subs: &mut Subscriptions, text: &str) -> (Vec<String>, bool) {
    SimStats::bump(&sim.stats.messages_received);
    let sid = subs.session_id.clone();
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
        return (vec![refuse(sim, "", &sid, "not-implemented", None)], false);
    };
    let action = message
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let request_id = message.get("request-id");
    let token = message
        .get("auth-token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match sim.check_token(token) {
        TokenCheck::Valid => {}
        check => {
            SimStats::bump(&sim.stats.failed_auth_messages);
            if check == TokenCheck::Expired {
                SimStats::bump(&sim.stats.expired_token_messages);
            }
            return (
                vec![refuse(sim, &action, &sid, "failed", request_id)],
                false,
            );
        }
    }
    let reply = match action.as_str() {
        "connect" => {
            let owned = |n: &String| sim.lock().account(n).is_some();
            match connect_accounts(message.get("value")) {
                Some(accounts) if !accounts.is_empty() && accounts.iter().all(owned) => {
                    for account in &accounts {
                        if subs.accounts.insert(account.clone()) {
                            sim.socket_opened(account);
                        }
                    }
                    subs.connected = true;
                    vec![ack("connect", &sid, Some(json!(accounts)), request_id)]
                }
                _ => vec![refuse(sim, "connect", &sid, "failed", request_id)],
            }
        }
        "heartbeat" if !subs.connected => vec![refuse(
            sim,
            "heartbeat",
            &sid,
            "not-implemented",
            request_id,
        )],
        "heartbeat" => {
            SimStats::bump(&sim.stats.heartbeats);
            let now = Instant::now();
            if subs
                .last_heartbeat
                .is_some_and(|last| now - last < Duration::from_secs(2))
            {
                SimStats::bump(&sim.stats.heartbeats_too_fast);
            }
            subs.last_heartbeat = Some(now);
            vec![ack("heartbeat", &sid, None, request_id)]
        }
        "public-watchlists-subscribe" | "quote-alerts-subscribe" | "user-message-subscribe"
            if !subs.connected =>
        {
            vec![refuse(
                sim,
                &action,
                &sid,
                "connect-not-completed",
                request_id,
            )]
        }
        "public-watchlists-subscribe" => {
            subs.public_watchlists = true;
            let watchlist = json!({"name": "High Options Volume", "group-name": "tastytrade", "order-index": 3,
                "watchlist-entries": [{"symbol": "AAPL", "instrument-type": "Equity"}, {"symbol": "/ES", "instrument-type": "Future"}]});
            vec![
                ack(&action, &sid, None, request_id),
                notification("PublicWatchlists", &watchlist).to_string(),
            ]
        }
        "quote-alerts-subscribe" => {
            subs.quote_alerts = true;
            vec![ack(&action, &sid, None, request_id)]
        }
        "user-message-subscribe" => {
            subs.user_messages = true;
            vec![ack(
                &action,
                &sid,
                message.get("value").cloned(),
                request_id,
            )]
        }
        _ => vec![refuse(sim, &action, &sid, "not-implemented", request_id)],
    };
    (reply, true)
}
