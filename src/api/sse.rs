//! Server-Sent Events. `GET /v1/accounts/{id}/events` streams one account with ids
//! `<epoch>-<seq>`; `GET /v1/events` streams every account the caller may see on one
//! connection (browsers allow ~6 per origin on HTTP/1.1) with ids that encode every
//! account's position (`<epoch>-main.41.ira.7`), or, over more accounts than
//! `--compact-ids-above`, one place in the whole log's order and the few accounts not at it
//! (`<epoch>-~977~<digest of the accounts>.ira.7`; no id while the starting snapshots go
//! out). Both start with `retry:` and `event: snapshot` per account (or exactly the missed
//! events, or `event: reset`), then every live event. Event frames were built once when
//! published; a subscriber only shares them. A stream opened with a token ends at its expiry
//! (`expiry`) with `: token expired`; the client reconnects with a fresh token and its
//! `Last-Event-ID`, losing nothing.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::feed::{Feed, Item, Resume, resume_of};
use super::limits::StreamPermit;
use super::state::AppState;
use crate::model::{Position, Snapshot};

/// How long a browser waits before reconnecting.
const RETRY_MS: u64 = 2_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume position for clients that cannot send the `Last-Event-ID` header.
    pub last_event_id: Option<String>,
    /// Comma-separated event types to receive (default: all). `snapshot` and `reset` always come.
    pub types: Option<String>,
    /// An API key, for EventSource (which cannot send headers); kept out of logs.
    pub access_token: Option<String>,
}

fn resume_text(headers: &HeaderMap, query: &EventsQuery) -> Option<String> {
    headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| query.last_event_id.clone())
}

fn types_filter(query: &EventsQuery) -> Option<HashSet<String>> {
    query
        .types
        .as_ref()
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<HashSet<_>>()
        })
        .filter(|t| !t.is_empty())
}

/// How stream ids are written.
#[derive(Clone, Copy)]
enum Ids {
    /// `<epoch>-<seq>` of the one account.
    Single,
    /// `<epoch>-<id>.<seq>...` over every account of the feed.
    Combined,
}

/// A snapshot's frame; without an id while a stream over many accounts still sends its
/// snapshots (see `Feed::combined_id`).
fn snapshot_frame(id: Option<&str>, reset: bool, snapshot: &Snapshot) -> Bytes {
    let name = if reset { "reset" } else { "snapshot" };
    let data = serde_json::to_string(snapshot).unwrap_or_default();
    let id = id.map(|id| format!("id: {id}\n")).unwrap_or_default();
    Bytes::from(format!("{id}event: {name}\ndata: {data}\n\n"))
}

/// Turns a feed into an SSE body: `retry:` on the first frame (some parsers drop it from a
/// block without `data:`), keep-alive comments, a closing comment on slow consumer or shutdown.
fn sse_response(feed: Feed, ids: Ids, app: &AppState, permit: StreamPermit) -> Response {
    let keep_alive = app.keep_alive;
    let state = (feed, ids, true);
    let stream = futures::stream::unfold(state, move |(mut feed, ids, first)| async move {
        let item = feed.next(keep_alive).await?;
        let mut frame: Vec<Bytes> = match item {
            Item::Snapshot { reset, snapshot } => {
                let id = match ids {
                    Ids::Single => Some(snapshot.position().to_string()),
                    Ids::Combined => feed.combined_id(),
                };
                vec![snapshot_frame(id.as_deref(), reset, &snapshot)]
            }
            Item::Event(event) => match ids {
                Ids::Single => vec![event.sse.clone()],
                Ids::Combined => match feed.combined_id() {
                    Some(id) => vec![Bytes::from(format!("id: {id}\n")), event.sse_tail.clone()],
                    None => vec![event.sse_tail.clone()],
                },
            },
            Item::Idle => vec![Bytes::from_static(b":\n\n")],
            Item::SlowConsumer => vec![Bytes::from_static(
                b": slow consumer; reconnect with Last-Event-ID\n\n",
            )],
            Item::Lagging { behind } => vec![Bytes::from(format!(
                ": lagging; the oldest undelivered event waited {} ms; reconnect with Last-Event-ID\n\n",
                behind.as_millis()
            ))],
            Item::ShuttingDown => vec![Bytes::from_static(b": gateway shutting down\n\n")],
            Item::TokenExpired => vec![Bytes::from_static(
                b": token expired; reconnect with a fresh token and Last-Event-ID\n\n",
            )],
        };
        if first {
            frame.insert(0, Bytes::from(format!("retry: {RETRY_MS}\n")));
        }
        Some((frame, (feed, ids, false)))
    });
    // The slot is held for as long as the body lives.
    let stream = stream.map(move |frame| {
        let _held = &permit;
        frame
    });
    // Chunks go out as they are: the shared event bytes are never copied per subscriber.
    let chunks =
        stream.flat_map(|frame| futures::stream::iter(frame.into_iter().map(Ok::<_, Infallible>)));
    let mut response = Body::from_stream(chunks).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Where a stream opened with a token ends (`expiry`); none for API keys.
fn token_deadline(caller: &Caller) -> Option<tokio::time::Instant> {
    caller.expires_at.map(super::expiry::deadline)
}

/// Live events of one account over SSE, resumable.
#[utoipa::path(get, path = "/v1/accounts/{id}/events", operation_id = "streamAccountEvents", tag = "streams",
    params(("id" = String, Path, description = "The account's public id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last `id:` received (`<epoch>-<seq>`); browsers send it on reconnect"),
        EventsQuery),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "`retry:`, then `event: snapshot` (data: Snapshot) or exactly the missed events or `event: reset` (data: Snapshot), then one event per change: `id: <epoch>-<seq>`, `event: <type>` (`Order`, `AccountBalance`, `CurrentPosition`, `ComplexOrder`, `TradingStatus`, `status`, ...), `data: <Envelope>`; `:` keep-alive comments when idle",
            body = crate::model::Envelope),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 404, description = "No account with that id, or one the key may not see (alike)", body = ErrorBody),
        (status = 429, description = "This client holds the most streams allowed (--max-streams-per-client)", body = ErrorBody),
    ),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn account_events(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account = caller.account(&app, &id)?;
    let permit = app.streams.acquire(&caller.client)?;
    let mut resume = Resume::new();
    if let Some(position) = resume_text(&headers, &query).and_then(|t| t.parse::<Position>().ok()) {
        resume.insert(id, position);
    }
    super::feed::settle(app.log.as_ref(), &resume).await;
    let feed = Feed::open(
        "sse",
        app.log.as_ref(),
        &[account.info.public_id.as_str()],
        &resume,
        types_filter(&query),
        app.shutdown.clone(),
    )
    .max_lag(app.max_lag)
    .until(token_deadline(&caller));
    Ok(sse_response(feed, Ids::Single, &app, permit))
}

/// Live events of every account the caller may see, on one connection, resumable.
#[utoipa::path(get, path = "/v1/events", operation_id = "streamAllEvents", tag = "streams",
    params(("Last-Event-ID" = Option<String>, Header, description = "The last `id:` received: `<epoch>-<id>.<seq>.<id>.<seq>` (every account's position) or, over more accounts than `--compact-ids-above`, `<epoch>-~<order>~<set>.<id>.<seq>` (a place in the gateway's order of all events, a digest of the stream's accounts, and the accounts not at the place; the starting snapshots then come without ids): restores every account's position"),
        EventsQuery),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "Like /v1/accounts/{id}/events for every visible account: a `snapshot` (or the missed events, or a `reset`) per account, then their events merged (each account in order); the `account` field of every envelope says whose it is",
            body = crate::model::Envelope),
        (status = 401, description = "No valid API key", body = ErrorBody),
        (status = 429, description = "This client holds the most streams allowed (--max-streams-per-client)", body = ErrorBody),
    ),
    security(("bearer" = []), ("access_token" = []), ("jwt_cookie" = [])))]
pub async fn all_events(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let permit = app.streams.acquire(&caller.client)?;
    let accounts = caller.visible_streams(&app);
    let (resume, place) = resume_text(&headers, &query)
        .map(|t| resume_of(&t))
        .unwrap_or_default();
    let ids: Vec<&str> = accounts.iter().map(|a| a.info.public_id.as_str()).collect();
    // Over many accounts (or resuming such a stream) the feed reads in the whole log's
    // order, so each event's id stays short: a position per account would make every id
    // grow with the accounts (100 KB per event at 5,000).
    let ordered = place.is_some() || ids.len() > app.compact_ids_above;
    let feed = if ordered {
        super::feed::settle_ordered(app.log.as_ref(), &ids, &resume, place.as_ref()).await;
        Feed::open_ordered(
            "sse",
            app.log.as_ref(),
            &ids,
            &resume,
            place.as_ref(),
            types_filter(&query),
            app.shutdown.clone(),
        )
    } else {
        super::feed::settle(app.log.as_ref(), &resume).await;
        Feed::open(
            "sse",
            app.log.as_ref(),
            &ids,
            &resume,
            types_filter(&query),
            app.shutdown.clone(),
        )
    };
    let feed = feed.max_lag(app.max_lag).until(token_deadline(&caller));
    Ok(sse_response(feed, Ids::Combined, &app, permit))
}
