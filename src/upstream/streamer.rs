//! One task per account holding its Account Streamer socket: connect -> `connect` action ->
//! ack -> buffer events while the REST baseline is read -> resync (differences published as
//! events) -> apply the buffer -> live, with heartbeats (never before the ack, each one a full
//! period after the previous one's ack, so tastytrade never sees two closer than the period)
//! and an ack watchdog. Any failure ends the socket; the task backs off with full jitter and
//! starts over, ALWAYS re-reading the baseline, because tastytrade replays nothing.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::Instrument;

use super::UpstreamError;
use super::pace::Pacer;
use super::rest::BASELINE_CALLS;
use super::rest::RestClient;
use super::session::TokenSource;
use super::sink::AccountSink;
use super::wire::{self, Frame, Notification, Reply};
use crate::model::EventKind;
use crate::model::LinkState;
use crate::model::events::AccountEvent;
use crate::model::state::{AccountState, Applied};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How the streamer connections behave.
#[derive(Clone, Debug)]
pub struct StreamerSettings {
    pub url: String,
    /// Heartbeat period (tastytrade accepts 2-60 s).
    pub heartbeat: Duration,
    /// Upper bound of the reconnect backoff once an outage is long.
    pub backoff_cap: Duration,
    /// The longest `Retry-After` honoured.
    pub retry_after_cap: Duration,
    /// REST reconcile period while live, a watchdog against silent streams.
    pub reconcile: Duration,
    /// Bound on connecting, on each ack, and on a baseline read.
    pub request_timeout: Duration,
}

/// Everything one account's task needs.
pub struct AccountLink {
    pub account: Arc<dyn AccountSink>,
    /// The full account number: sent to tastytrade, never logged or shown.
    pub number: String,
    pub rest: Arc<RestClient>,
    pub tokens: Arc<TokenSource>,
    pub settings: StreamerSettings,
    /// The attempt budget every account shares.
    pub pacer: Arc<Pacer>,
    /// Account-independent subscriptions this socket carries (one socket carries them all).
    pub user: Option<UserSubscriptions>,
}

/// Account-independent streams: quote alerts, public watchlists, user messages. They are
/// subscribed after `connect` on one account's socket and published on their own stream.
#[derive(Clone)]
pub struct UserSubscriptions {
    /// `(action, value)`: `quote-alerts-subscribe`, `public-watchlists-subscribe`,
    /// `user-message-subscribe` with the user's external id.
    pub actions: Vec<(&'static str, Option<Value>)>,
    /// Where their events are published.
    pub stream: Arc<dyn AccountSink>,
}

/// The actions an account-independent subscription is made with.
const SUBSCRIBE_ACTIONS: [&str; 3] = [
    "quote-alerts-subscribe",
    "public-watchlists-subscribe",
    "user-message-subscribe",
];

/// How long an outage counts as short: retries stay quick (at most 500 ms apart), so an
/// account is consistent again within a second of tastytrade's return.
pub const QUICK_RETRIES_FOR: Duration = Duration::from_secs(90);
/// The retry ceiling while an outage is short.
const QUICK_CEILING: Duration = Duration::from_millis(500);

/// The delay before reconnect attempt `attempt` (0-based) of an outage that began `outage`
/// ago: a ceiling that doubles from 250 ms up to 500 ms while the outage is short, then from
/// 500 ms up to `cap`; the delay is drawn from the ceiling's upper half (jitter spreads the
/// accounts; the shared [`Pacer`] keeps their total polite).
pub fn backoff(attempt: u32, outage: Duration, cap: Duration) -> Duration {
    let (start, ceiling) = if outage < QUICK_RETRIES_FOR {
        (Duration::from_millis(250), QUICK_CEILING)
    } else {
        (
            Duration::from_millis(500),
            cap.max(Duration::from_millis(500)),
        )
    };
    let ceiling = start.saturating_mul(1 << attempt.min(16)).min(ceiling);
    let ceiling_ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::rng().random_range(ceiling_ms / 2..=ceiling_ms))
}

/// Runs one account's upstream connection until `shutdown` turns true.
pub async fn run(link: AccountLink, mut shutdown: watch::Receiver<bool>) {
    let id = link.account.public_id().to_string();
    let mut attempt: u32 = 0;
    let mut down_since = Instant::now();
    loop {
        if *shutdown.borrow() {
            break;
        }
        // One span per socket, at info, so traces show each upstream connection's life;
        // only the public id, never the number.
        let span = tracing::info_span!("upstream_connection", account = %id, attempt);
        let outcome = connection(&link, &mut shutdown, &mut attempt)
            .instrument(span)
            .await;
        match outcome {
            Ok(()) => break,
            Err(error) => {
                if attempt == 0 {
                    // It was live (or never tried): the outage starts now.
                    down_since = Instant::now();
                }
                let settings = &link.settings;
                let delay = match error.retry_after() {
                    Some(asked) => asked.min(settings.retry_after_cap),
                    None => backoff(attempt, down_since.elapsed(), settings.backoff_cap),
                };
                attempt = attempt.saturating_add(1);
                let message = error.to_string();
                tracing::warn!(account = %id, error = %crate::mask::diagnostic(&message), delay_ms = delay.as_millis() as u64, "upstream connection failed; reconnecting");
                link.account.update_status(|s| {
                    s.state = LinkState::BackingOff;
                    s.since = chrono::Utc::now();
                    s.reconnects += 1;
                    s.last_error = Some(message);
                });
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
    link.account.update_status(|s| {
        s.state = LinkState::Stopped;
        s.since = chrono::Utc::now();
    });
}

impl AccountLink {
    fn set_state(&self, state: LinkState) {
        self.account.update_status(|s| {
            s.state = state;
            s.since = chrono::Utc::now();
        });
    }
}

/// One socket's life: open, handshake, baseline, live. `Ok` only on shutdown.
async fn connection(
    link: &AccountLink,
    shutdown: &mut watch::Receiver<bool>,
    attempt: &mut u32,
) -> Result<(), UpstreamError> {
    link.set_state(LinkState::Connecting);
    let mut conn = open(link).await?;
    conn.handshake().await?;
    link.set_state(LinkState::Resyncing);
    conn.reconcile().await?;
    link.set_state(LinkState::Live);
    *attempt = 0;
    conn.live(shutdown).await
}

/// Opens the streamer socket (a slot of the shared attempt budget first).
async fn open(link: &AccountLink) -> Result<Connection<'_>, UpstreamError> {
    let settings = &link.settings;
    // tastytrade's frames are small; tungstenite's default 128 KiB read buffer is zeroed on
    // every read and kept per socket: at 5,000 accounts that was 640 MB of memset a second
    // and most of an account's memory (bench `accounts-5k`, perf profile in RESULTS.md). The
    // buffer still grows for a big frame.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20));
    link.pacer.wait("connect", 1).await;
    let (socket, _) = timeout(
        settings.request_timeout,
        tokio_tungstenite::connect_async_with_config(settings.url.as_str(), Some(config), false),
    )
    .await
    .map_err(|_| UpstreamError::Timeout("the streamer connection"))?
    .map_err(|e| UpstreamError::Streamer(format!("connect failed: {e}")))?;
    Ok(Connection {
        socket,
        next_request_id: 1,
        awaiting_heartbeat: None,
        next_heartbeat: far_future(),
        last_token: None,
        buffer: Vec::new(),
        link,
    })
}

impl Connection<'_> {
    /// `connect`, and its ack (events that arrive first are kept); then the
    /// account-independent subscriptions, only ever after the ack.
    async fn handshake(&mut self) -> Result<(), UpstreamError> {
        let link = self.link;
        let settings = &link.settings;
        let token = link.tokens.header().await?;
        let connect_id = self
            .send_action("connect", Some(json!([link.number])), &token)
            .await?;
        let deadline = Instant::now() + settings.request_timeout;
        loop {
            let reply = tokio::select! {
                frame = self.next_frames() => frame?,
                _ = sleep_until(deadline) => return Err(UpstreamError::Timeout("the connect ack")),
            };
            let Some(reply) = reply
                .into_iter()
                .find(|r| r.action == "connect" && r.request_id.is_none_or(|id| id == connect_id))
            else {
                continue;
            };
            if reply.ok {
                self.next_heartbeat = Instant::now() + settings.heartbeat;
                break;
            }
            if reply.message.as_deref() == Some("failed") {
                link.tokens.invalidate(&token).await;
            }
            return Err(UpstreamError::Streamer(format!(
                "connect refused: {}",
                reply.message.unwrap_or_default()
            )));
        }
        if let Some(user) = &link.user {
            for (action, value) in &user.actions {
                let token = link.tokens.header().await?;
                self.send_action(action, value.clone(), &token).await?;
            }
        }
        Ok(())
    }

    /// Reads the REST baseline while buffering (heartbeats keep flowing), publishes the
    /// differences, then the events that arrived meanwhile, in order.
    async fn reconcile(&mut self) -> Result<(), UpstreamError> {
        let baseline = self.baseline().await?;
        resync(self.link, baseline);
        self.apply_buffered();
        Ok(())
    }

    fn apply_buffered(&mut self) {
        for notification in std::mem::take(&mut self.buffer) {
            apply(self.link, notification);
        }
    }

    /// Live: frames, heartbeats and their acks, the silence watchdog and the periodic
    /// reconcile, until a failure or shutdown.
    async fn live(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), UpstreamError> {
        let link = self.link;
        let settings = &link.settings;
        let mut reconcile =
            tokio::time::interval_at(Instant::now() + settings.reconcile, settings.reconcile);
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let silence = settings.heartbeat * 2 + settings.request_timeout;
        let mut last_frame = Instant::now();
        loop {
            let ack_deadline = self
                .awaiting_heartbeat
                .map(|(_, sent)| sent + settings.request_timeout);
            let heartbeat_due = self.next_heartbeat;
            tokio::select! {
                frames = self.next_frames() => {
                    let replies = frames?;
                    last_frame = Instant::now();
                    self.on_replies(replies).await?;
                    self.apply_buffered();
                }
                _ = sleep_until(heartbeat_due) => self.heartbeat().await?,
                _ = sleep_until(ack_deadline.unwrap_or_else(far_future)), if ack_deadline.is_some() => {
                    return Err(UpstreamError::Streamer("heartbeat ack missing".into()));
                }
                _ = sleep_until(last_frame + silence) => {
                    return Err(UpstreamError::Streamer(format!("no frame for {} s", silence.as_secs())));
                }
                _ = reconcile.tick() => self.reconcile().await?,
                _ = shutdown.changed() => {
                    let _ = self.socket.close(None).await;
                    let _ = timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = self.socket.next().await {} }).await;
                    return Ok(());
                }
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}

fn resync(link: &AccountLink, baseline: AccountState) {
    let changes = link.account.baseline(baseline);
    if changes > 0 {
        tracing::info!(account = %link.account.public_id(), changes, "resync published the differences");
    }
}

/// Checks an event against its typed model, then hands it to the account. Broken shapes are
/// skipped and counted; unknown types are counted and passed through.
fn apply(link: &AccountLink, notification: Notification) {
    let Notification {
        kind,
        data,
        timestamp,
    } = notification;
    // The type is upstream text like the data: the account masks an unknown one before it is
    // published; log lines get it masked as diagnostics are.
    let kind = EventKind::named(&kind);
    let logged = crate::mask::diagnostic(kind.as_str());
    let target = match &link.user {
        Some(user) if kind.is_user_event() => &user.stream,
        _ => &link.account,
    };
    let id = target.public_id();
    match AccountEvent::parse(kind.as_str(), &data) {
        Err(error) => {
            // Masked here too, not only by the log writer: spans and their events also go
            // out over OTLP, which the writer never sees.
            let error = crate::mask::diagnostic(&error.to_string());
            tracing::warn!(account = %id, kind = %logged, %error, "skipped an event whose shape is broken");
            target.update_status(|s| s.invalid_events += 1);
            return;
        }
        Ok(AccountEvent::Unknown) => {
            tracing::debug!(account = %id, kind = %logged, "passing through an event of an unknown type");
            target.update_status(|s| s.unknown_events += 1);
        }
        Ok(_) => {}
    }
    if target.event(kind.clone(), data, timestamp) == Applied::Invalid {
        tracing::warn!(account = %id, kind = %logged, "skipped an event without its key fields");
        target.update_status(|s| s.invalid_events += 1);
    }
}

struct Connection<'a> {
    socket: Socket,
    next_request_id: u64,
    awaiting_heartbeat: Option<(u64, Instant)>,
    /// When the next heartbeat is due: a period after the connect ack or the last heartbeat
    /// ack (far off while one is awaited). Spacing by acks, not by a fixed clock, keeps every
    /// gap tastytrade measures at or above the period even when a send is late (a token
    /// refresh, a busy runtime), as the official JS SDK does.
    next_heartbeat: Instant,
    /// The token the last action carried: the one to drop when tastytrade answers `failed`.
    last_token: Option<SecretString>,
    /// Notifications read but not yet applied.
    buffer: Vec<Notification>,
    link: &'a AccountLink,
}

impl Connection<'_> {
    async fn send_action(
        &mut self,
        action: &str,
        value: Option<Value>,
        token: &SecretString,
    ) -> Result<u64, UpstreamError> {
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        let mut message = json!({"action": action, "auth-token": token.expose_secret(), "request-id": request_id, "source": super::USER_AGENT});
        if let Some(value) = value {
            message["value"] = value;
        }
        self.last_token = Some(token.clone());
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .map_err(|e| UpstreamError::Streamer(format!("send failed: {e}")))?;
        Ok(request_id)
    }

    async fn heartbeat(&mut self) -> Result<(), UpstreamError> {
        let token = self.link.tokens.header().await?;
        let id = self.send_action("heartbeat", None, &token).await?;
        if self.awaiting_heartbeat.is_none() {
            self.awaiting_heartbeat = Some((id, Instant::now()));
        }
        self.next_heartbeat = far_future();
        Ok(())
    }

    /// Reads the next message: notifications go to the buffer, replies are returned.
    async fn next_frames(&mut self) -> Result<Vec<Reply>, UpstreamError> {
        loop {
            let message = match self.socket.next().await {
                None => return Err(UpstreamError::Streamer("connection ended".into())),
                Some(Err(e)) => return Err(UpstreamError::Streamer(format!("read failed: {e}"))),
                Some(Ok(message)) => message,
            };
            let text = match message {
                Message::Text(text) => text,
                Message::Close(frame) => {
                    let detail = frame
                        .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                        .unwrap_or_default();
                    return Err(UpstreamError::Streamer(
                        format!("closed by tastytrade {detail}")
                            .trim_end()
                            .to_string(),
                    ));
                }
                _ => continue,
            };
            let (frames, errors) = wire::parse(text.as_str());
            if !errors.is_empty() {
                for error in &errors {
                    let error = crate::mask::diagnostic(&error.to_string());
                    tracing::warn!(account = %self.link.account.public_id(), %error, bytes = text.len(), "skipped an upstream frame");
                }
                self.link
                    .account
                    .update_status(|s| s.skipped_frames += errors.len() as u64);
            }
            let mut replies = Vec::new();
            for frame in frames {
                match frame {
                    Frame::Notification(n) => self.buffer.push(n),
                    Frame::Reply(r) => replies.push(r),
                }
            }
            return Ok(replies);
        }
    }

    /// Handles acks and errors while live.
    async fn on_replies(&mut self, replies: Vec<Reply>) -> Result<(), UpstreamError> {
        for reply in replies {
            if !reply.ok
                && SUBSCRIBE_ACTIONS.contains(&reply.action.as_str())
                && reply.message.as_deref() != Some("failed")
            {
                // An optional stream tastytrade will not give is no reason to drop the account's.
                let message = crate::mask::diagnostic(reply.message.as_deref().unwrap_or_default());
                let action = crate::mask::diagnostic(&reply.action);
                tracing::warn!(%action, %message, "tastytrade refused an optional subscription");
                continue;
            }
            if !reply.ok {
                let message = reply.message.unwrap_or_default();
                // Drop the refused token, not whichever is current: another socket may
                // already hold a fresh one (and asking for one here could mint it just to
                // throw it away).
                if message == "failed"
                    && let Some(token) = &self.last_token
                {
                    self.link.tokens.invalidate(token).await;
                }
                return Err(UpstreamError::Streamer(format!(
                    "{} refused: {message}",
                    reply.action
                )));
            }
            if reply.action == "heartbeat"
                && let Some((id, _)) = self.awaiting_heartbeat
                && reply.request_id.is_none_or(|r| r >= id)
            {
                self.awaiting_heartbeat = None;
                self.next_heartbeat = Instant::now() + self.link.settings.heartbeat;
            }
        }
        Ok(())
    }

    /// Reads the REST baseline while buffering: first a slot of the shared budget (its
    /// wait in line has no deadline), then the reads (which have).
    async fn baseline(&mut self) -> Result<AccountState, UpstreamError> {
        let link = self.link;
        self.while_buffering(link.pacer.wait("baseline", BASELINE_CALLS), None)
            .await?;
        let deadline = link.settings.request_timeout * 3;
        self.while_buffering(link.rest.baseline(&link.number), Some(deadline))
            .await?
    }

    /// Runs `work` while reading frames into the buffer and sending heartbeats, within
    /// `limit` if given.
    async fn while_buffering<T>(
        &mut self,
        work: impl Future<Output = T>,
        limit: Option<Duration>,
    ) -> Result<T, UpstreamError> {
        let deadline = limit.map_or_else(far_future, |limit| Instant::now() + limit);
        tokio::pin!(work);
        loop {
            let heartbeat_due = self.next_heartbeat;
            tokio::select! {
                result = &mut work => return Ok(result),
                frames = self.next_frames() => {
                    let replies = frames?;
                    self.on_replies(replies).await?;
                }
                _ = sleep_until(heartbeat_due) => self.heartbeat().await?,
                _ = sleep_until(deadline) => return Err(UpstreamError::Timeout("the REST baseline")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_quick_in_a_short_outage_and_capped_in_a_long_one() {
        let cap = Duration::from_secs(4);
        for attempt in 0..40 {
            let quick = backoff(attempt, Duration::from_secs(59), cap);
            assert!(quick <= QUICK_CEILING, "{attempt}: {quick:?}");
            assert!(quick >= Duration::from_millis(125), "{attempt}: {quick:?}");
            let long = backoff(attempt, QUICK_RETRIES_FOR, cap);
            assert!(
                long <= cap && long >= Duration::from_millis(250),
                "{attempt}: {long:?}"
            );
        }
        assert!(backoff(40, QUICK_RETRIES_FOR, cap) >= Duration::from_secs(2));
    }
}
