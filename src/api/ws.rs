//! WebSocket streams (`GET /v1/ws`). JSON text messages both ways.
//!
//! Client -> gateway (`id` is optional and echoed):
//! - `{"op":"subscribe","id":1,"accounts":["main"],"types":["Order"],"resume":{"main":"<epoch>-<seq>"}}`
//!   (`accounts` empty or `["*"]`: every account the key may see; replaces any earlier subscription)
//! - `{"op":"unsubscribe","id":2}`, `{"op":"ping","id":3}`
//! - `{"op":"refresh","id":4,"token":"<jwt>"}`: a fresh token for a socket opened with one
//!
//! Gateway -> client: every message has a `type`. `ack`, `error` (`code`, `message`), `pong`;
//! `snapshot` / `reset` (`account`, `id`, `seq`, `data`: the snapshot); and each event as the
//! very envelope SSE carries in `data:` (shared bytes, never re-serialised). A socket opened
//! with a token gets `{"type":"token_expiring","expires_at":<exp>}` `--jwt-expiry-notice-secs`
//! before it expires; a `refresh` whose token is valid and whose scope covers the current
//! subscription is acked (`{"type":"ack","op":"refresh","expires_at":<exp>}`) and the stream
//! goes on, untouched; otherwise an `error` (a token code, or `token_scope_too_narrow`) and
//! the old token stays in force.
//! Close codes: 1000 on the client's close, 1001 on gateway shutdown, 4001 when the token
//! expired (reconnect with a fresh one and `resume`), 4008 when the client fell too far
//! behind (resubscribe with `resume`).

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::expiry::{CLOSE_TOKEN_EXPIRED, Tick, TokenClock, next_tick};
use super::feed::{Feed, Item, Resume};
use super::state::AppState;

/// How long one send may take before the client counts as stalled.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// WebSocket-level pings keep proxies and dead peers in check.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Close code for a client that fell too far behind, or whose oldest undelivered event
/// got older than `--max-lag-ms`.
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;
/// Close code for a frame or message over [`MAX_MESSAGE`] (RFC 6455 "message too big").
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The largest client message (and frame) read. Clients send a few small ops; a frame is
/// refused from its header, before its payload is buffered.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A message from a WebSocket client.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = WsClientMessage)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientMessage {
    Subscribe {
        id: Option<Value>,
        #[serde(default)]
        accounts: Vec<String>,
        types: Option<Vec<String>>,
        #[serde(default)]
        resume: std::collections::HashMap<String, String>,
    },
    Unsubscribe {
        id: Option<Value>,
    },
    Ping {
        id: Option<Value>,
    },
    Refresh {
        id: Option<Value>,
        /// Never in `Debug` output.
        #[schema(value_type = String)]
        token: secrecy::SecretString,
    },
}

/// Live events over WebSocket (see the module docs for the protocol).
#[utoipa::path(get, path = "/v1/ws", operation_id = "openWebSocket", tag = "streams",
    description = "WebSocket upgrade. Send `{\"op\":\"subscribe\",\"accounts\":[\"<id>\"],\"types\":[...],\"resume\":{\"<id>\":\"<epoch>-<seq>\"}}`; receive `ack`, `snapshot`/`reset` per account, then one message per event: the same Envelope SSE carries. `{\"op\":\"ping\"}` -> `pong`. Errors come as `{\"type\":\"error\",\"code\",\"message\"}`. With a token (JWT): `{\"type\":\"token_expiring\",\"expires_at\"}` shortly before it expires; send `{\"op\":\"refresh\",\"token\":\"<jwt>\"}` to go on. Close codes: 1001 shutdown, 4001 token expired, 4008 slow consumer.",
    responses(
        (status = 101, description = "Switching to WebSocket"),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 403, description = "A browser origin that is not allowed (--cors-origins)", body = ErrorBody),
        (status = 429, description = "This client holds the most streams allowed (--max-streams-per-client)", body = ErrorBody),
    ),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn upgrade(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    if !origin_allowed(&app, &headers) {
        return Err(ApiError::OriginNotAllowed);
    }
    let permit = app.streams.acquire(&caller.client)?;
    // Clients send a few small ops; tungstenite's default 128 KiB read buffer per
    // connection would be most of a subscriber's memory (it still grows for a big message).
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| async move {
            session(app, caller, socket).await;
            drop(permit);
        }))
}

/// Browsers send `Origin` on WebSocket upgrades and apply no CORS to them, so the gateway
/// checks: no `Origin` (not a browser), a listed one (--cors-origins), or the gateway's own
/// page on a loopback host (the dashboard). `Host` alone proves nothing: under DNS
/// rebinding an attacker's page has `Host` and `Origin` alike, both naming the attacker.
fn origin_allowed(app: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if app.cors_origins.iter().any(|allowed| allowed == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((host, origin_authority), (Some(host), Some(authority))
        if host.eq_ignore_ascii_case(authority) && super::host::is_loopback_authority(authority))
}

/// Parses one client text message (the fuzz target `ws_client_message` calls this).
pub fn parse_client_message(text: &str) -> Result<ClientMessage, serde_json::Error> {
    serde_json::from_str(text)
}

fn text(value: Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

fn error(id: &Option<Value>, code: &str, message: &str) -> Message {
    text(json!({"type": "error", "id": id, "code": code, "message": message}))
}

/// Whether a read failed because a frame or message was over the limit.
fn too_big(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(tungstenite) = cause.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
            return matches!(
                tungstenite,
                tokio_tungstenite::tungstenite::Error::Capacity(_)
            );
        }
        source = cause.source();
    }
    false
}

/// The `snapshot` / `reset` message of one account, serialised once straight from the
/// snapshot (no intermediate JSON tree).
fn snapshot_message(reset: bool, snapshot: &crate::model::Snapshot) -> Message {
    #[derive(serde::Serialize)]
    struct SnapshotMessage<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        account: &'a str,
        id: String,
        seq: u64,
        data: &'a crate::model::Snapshot,
    }
    let message = SnapshotMessage {
        kind: if reset { "reset" } else { "snapshot" },
        account: &snapshot.account,
        id: snapshot.position().to_string(),
        seq: snapshot.seq,
        data: snapshot,
    };
    let json = serde_json::to_string(&message).unwrap_or_default();
    Message::Text(Utf8Bytes::from(json))
}

/// Waits for the next feed item, or forever when there is no subscription.
async fn next_item(feed: &mut Option<Feed>, keep_alive: Duration) -> Option<Item> {
    match feed {
        Some(feed) => feed.next(keep_alive).await,
        None => std::future::pending().await,
    }
}

/// `work`'s outcome, or `None` if the token expires first (no end: it runs to completion).
async fn until<T>(end: Option<tokio::time::Instant>, work: impl Future<Output = T>) -> Option<T> {
    match end {
        Some(end) => tokio::time::timeout_at(end, work).await.ok(),
        None => Some(work.await),
    }
}

/// The clock of a socket opened with a token (`expiry`); none for API keys.
fn token_clock(app: &AppState, caller: &Caller) -> Option<TokenClock> {
    let jwt = app.jwt.as_ref()?;
    let expires_at = caller.expires_at?;
    Some(TokenClock::new(expires_at, jwt.expiry_notice))
}

fn token_expired() -> CloseFrame {
    CloseFrame {
        code: CLOSE_TOKEN_EXPIRED,
        reason: Utf8Bytes::from_static("token expired; reconnect with a fresh token and resume"),
    }
}

/// Handles a `refresh`: the caller the fresh token makes, if the socket was opened with a
/// token and the new one is valid and covers every account of the current subscription
/// (a narrower token is refused rather than silently narrowing the stream; unsubscribe or
/// resubscribe first).
async fn refresh(
    app: &AppState,
    caller: &Caller,
    subscribed: &[String],
    id: &Option<Value>,
    token: &str,
) -> Result<Caller, Message> {
    if caller.expires_at.is_none() || !super::jwt::looks_like_jwt(token) {
        return Err(error(
            id,
            "refresh_not_applicable",
            "refresh takes a token (JWT), on a socket opened with one",
        ));
    }
    let fresh = match Caller::of_credential(app, token).await {
        Ok(fresh) if fresh.expires_at.is_some() => fresh,
        Ok(_) => return Err(error(id, "token_invalid", "the token is not valid")),
        Err(ApiError::Token(refusal)) => {
            return Err(error(id, refusal.code(), &refusal.to_string()));
        }
        Err(_) => return Err(error(id, "token_invalid", "the token is not valid")),
    };
    if !subscribed
        .iter()
        .all(|public_id| fresh.scope.allows(public_id))
    {
        return Err(error(
            id,
            "token_scope_too_narrow",
            "the new token does not cover every account of the subscription; unsubscribe or subscribe to fewer accounts first",
        ));
    }
    Ok(Caller {
        client: caller.client.clone(),
        ..fresh
    })
}

/// Handles one subscribe request: checks the accounts, opens the feed, says `ack`; returns
/// the accounts' public ids too.
async fn subscribe(
    app: &AppState,
    caller: &Caller,
    id: &Option<Value>,
    accounts: Vec<String>,
    types: Option<Vec<String>>,
    resume: std::collections::HashMap<String, String>,
) -> Result<(Feed, Message, Vec<String>), Message> {
    let wanted = chosen_accounts(app, caller, id, &accounts)?;
    let positions = resume_positions(id, resume)?;
    let types = types
        .map(|t| t.into_iter().collect::<HashSet<_>>())
        .filter(|t| !t.is_empty());
    let names: Vec<&str> = wanted.iter().map(|a| a.info.public_id.as_str()).collect();
    let ack = text(
        json!({"type": "ack", "id": id, "op": "subscribe", "accounts": names, "types": types}),
    );
    crate::api::feed::settle(app.log.as_ref(), &positions).await;
    let feed = Feed::open(
        "ws",
        app.log.as_ref(),
        &names,
        &positions,
        types,
        app.shutdown.clone(),
    )
    .max_lag(app.max_lag);
    let names = names.into_iter().map(str::to_string).collect();
    Ok((feed, ack, names))
}

/// The accounts a subscribe names (none or `*`: every one the key may see), each once.
fn chosen_accounts(
    app: &AppState,
    caller: &Caller,
    id: &Option<Value>,
    accounts: &[String],
) -> Result<Vec<std::sync::Arc<crate::account::Account>>, Message> {
    let visible = caller.visible_streams(app);
    // More entries than the key may see can only be repeats or strangers: refused before
    // any work, so one message cannot make the gateway build thousands of snapshots.
    if accounts.len() > visible.len().max(1) {
        return Err(error(
            id,
            "too_many_accounts",
            &format!(
                "a subscribe may list at most {} accounts (every account this key may see)",
                visible.len().max(1)
            ),
        ));
    }
    if accounts.is_empty() || accounts.iter().any(|a| a == "*") {
        return Ok(visible);
    }
    let mut seen = HashSet::new();
    let mut chosen = Vec::new();
    for (index, public_id) in accounts.iter().enumerate() {
        if !seen.insert(public_id.as_str()) {
            continue;
        }
        match caller.account(app, public_id) {
            Ok(account) => chosen.push(account),
            Err(e) => {
                return Err(error(
                    id,
                    "unknown_account",
                    &format!("{e} (account #{} of the request)", index + 1),
                ));
            }
        }
    }
    Ok(chosen)
}

/// The `resume` map read as stream positions.
fn resume_positions(
    id: &Option<Value>,
    resume: std::collections::HashMap<String, String>,
) -> Result<Resume, Message> {
    let mut positions = Resume::new();
    for (public_id, position) in resume {
        match position.parse::<crate::model::Position>() {
            Ok(position) => {
                positions.insert(public_id, position);
            }
            Err(bad) => return Err(error(id, "bad_resume", &bad.to_string())),
        }
    }
    Ok(positions)
}

/// One socket's session. Longer than most functions on purpose: one `select!` over the
/// token clock (first), the client's messages, the feed and the ping timer, read at once, shows
/// every way a session ends (client close, too big, slow consumer, shutdown, token expiry,
/// a stalled send).
async fn session(app: AppState, mut caller: Caller, socket: WebSocket) {
    let (mut sink, mut incoming) = socket.split();
    let mut feed: Option<Feed> = None;
    // The public ids of the current subscription: a refreshed token must cover them.
    let mut subscribed: Vec<String> = Vec::new();
    let mut clock = token_clock(&app, &caller);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let close: Option<CloseFrame> = loop {
        // When the token expires (none for API keys): nothing may hold the socket open past
        // it, not a busy feed, a slow key server during a refresh, nor a stalled send.
        let token_end = clock.as_ref().map(TokenClock::end);
        let outgoing: Option<Message> = tokio::select! {
            // The token clock first: a busy feed is always ready and must not win over it.
            biased;
            tick = next_tick(&mut clock) => match tick {
                Tick::Expiring => Some(text(json!({"type": "token_expiring", "expires_at": caller.expires_at}))),
                Tick::Expired => break Some(token_expired()),
            },
            message = incoming.next() => match message {
                Some(Err(e)) if too_big(&e) => break Some(CloseFrame {
                    code: CLOSE_TOO_BIG,
                    reason: Utf8Bytes::from_static("message too big: the limit is 64 KiB"),
                }),
                None | Some(Err(_)) => break None,
                Some(Ok(Message::Close(_))) => break None,
                Some(Ok(Message::Text(body))) => Some(match parse_client_message(body.as_str()) {
                    Ok(ClientMessage::Subscribe { id, accounts, types, resume }) => match subscribe(&app, &caller, &id, accounts, types, resume).await {
                        Ok((opened, ack, names)) => {
                            feed = Some(opened);
                            subscribed = names;
                            ack
                        }
                        Err(refusal) => refusal,
                    },
                    Ok(ClientMessage::Unsubscribe { id }) => {
                        feed = None;
                        subscribed.clear();
                        text(json!({"type": "ack", "id": id, "op": "unsubscribe"}))
                    }
                    Ok(ClientMessage::Ping { id }) => text(json!({"type": "pong", "id": id})),
                    Ok(ClientMessage::Refresh { id, token }) => match until(token_end, refresh(&app, &caller, &subscribed, &id, secrecy::ExposeSecret::expose_secret(&token))).await {
                        None => break Some(token_expired()),
                        Some(Ok(fresh)) => {
                            let ack = text(json!({"type": "ack", "id": id, "op": "refresh", "expires_at": fresh.expires_at}));
                            caller = fresh;
                            clock = token_clock(&app, &caller);
                            ack
                        }
                        Some(Err(refusal)) => refusal,
                    },
                    Err(_) => error(&None, "bad_message", "expected a JSON object with \"op\": \"subscribe\", \"unsubscribe\", \"ping\" or \"refresh\" (see /docs)"),
                }),
                Some(Ok(Message::Binary(_))) => Some(error(&None, "bad_message", "binary messages are not supported; send JSON text")),
                Some(Ok(_)) => None,
            },
            item = next_item(&mut feed, app.keep_alive) => match item {
                None => {
                    feed = None;
                    None
                }
                Some(Item::Snapshot { reset, snapshot }) => Some(snapshot_message(reset, &snapshot)),
                Some(Item::Event(event)) => Utf8Bytes::try_from(event.json.clone()).ok().map(Message::Text),
                Some(Item::Idle) => None,
                Some(Item::SlowConsumer) => break Some(CloseFrame { code: CLOSE_SLOW_CONSUMER, reason: Utf8Bytes::from_static("slow consumer; resubscribe with resume positions") }),
                Some(Item::Lagging { .. }) => break Some(CloseFrame { code: CLOSE_SLOW_CONSUMER, reason: Utf8Bytes::from_static("lagging (--max-lag-ms); resubscribe with resume positions") }),
                Some(Item::ShuttingDown) => break Some(CloseFrame { code: 1001, reason: Utf8Bytes::from_static("gateway shutting down") }),
                Some(Item::TokenExpired) => break Some(token_expired()),
            },
            _ = ping.tick() => Some(Message::Ping(Default::default())),
        };
        if let Some(message) = outgoing {
            match until(
                token_end,
                tokio::time::timeout(SEND_TIMEOUT, sink.send(message)),
            )
            .await
            {
                None => break Some(token_expired()),
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(_))) => return,
                Some(Err(_)) => {
                    break Some(CloseFrame {
                        code: CLOSE_SLOW_CONSUMER,
                        reason: Utf8Bytes::from_static("slow consumer: a send stalled"),
                    });
                }
            }
        }
    };
    if let Some(frame) = close {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
    // Flush the close handshake (ours, or the reply to the client's).
    let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
}
