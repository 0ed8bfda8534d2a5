//! Server-Sent Events for one account (`GET /v1/accounts/{id}/events`): `retry:` first, then
//! `event: snapshot` (or, when resuming with `Last-Event-ID`, exactly the missed events, or
//! `event: reset` with a fresh snapshot when they are gone), then every live event in order.
//! Each event's SSE frame was built once when it was published; a subscriber only copies a
//! pointer to the shared bytes.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::sync::watch;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::state::AppState;
use crate::account::{Published, Snapshot, Start};

/// How long a browser waits before reconnecting.
const RETRY_MS: u64 = 2_000;
/// A comment line when nothing else was sent for this long (proxies close idle streams).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Resume position for clients that cannot send the `Last-Event-ID` header.
    pub last_event_id: Option<String>,
    /// Comma-separated event types to receive (default: all). `snapshot` and `reset` always come.
    pub types: Option<String>,
}

/// Splits `<epoch>-<seq>`.
fn parse_event_id(text: &str) -> Option<(&str, u64)> {
    let (epoch, seq) = text.trim().rsplit_once('-')?;
    Some((epoch, seq.parse().ok()?))
}

fn snapshot_frame(name: &str, snapshot: &Snapshot) -> Bytes {
    let data = serde_json::to_string(snapshot).unwrap_or_default();
    Bytes::from(format!(
        "id: {}-{}\nevent: {name}\ndata: {data}\n\n",
        snapshot.epoch, snapshot.seq
    ))
}

/// Live events of one account over SSE, resumable.
#[utoipa::path(get, path = "/v1/accounts/{id}/events", tag = "streams",
    params(("id" = String, Path, description = "The account's public id"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last `id:` received (`<epoch>-<seq>`); browsers send it on reconnect"),
        EventsQuery),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "`retry:`, then `event: snapshot` (data: Snapshot) or the missed events or `event: reset` (data: Snapshot), then one event per change: `id: <epoch>-<seq>`, `event: <type>`, `data: <Envelope>`; `:` keep-alive comments when idle",
            body = crate::model::Envelope),
        (status = 404, description = "No account with that id", body = ErrorBody),
    ))]
pub async fn account_events(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let account = app.account(&id)?;
    let resume_text = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or(query.last_event_id);
    let resume = resume_text.as_deref().and_then(parse_event_id);
    let types = query
        .types
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<HashSet<_>>()
        })
        .filter(|t| !t.is_empty());

    let (start, receiver) = account.subscribe(resume);
    let mut initial = VecDeque::new();
    let last_seq = match start {
        Start::Snapshot(snapshot) => {
            initial.push_back(snapshot_frame("snapshot", &snapshot));
            snapshot.seq
        }
        Start::Reset(snapshot) => {
            initial.push_back(snapshot_frame("reset", &snapshot));
            snapshot.seq
        }
        Start::Replay(events) => {
            let resumed_at = resume.map(|(_, seq)| seq).unwrap_or_default();
            let last = events.last().map_or(resumed_at, |e| e.seq);
            initial.extend(
                events
                    .iter()
                    .filter(|e| wanted(&types, e))
                    .map(|e| e.sse.clone()),
            );
            last
        }
    };
    // `retry:` rides on the first frame: some parsers drop it from a block without `data:`.
    let retry = format!("retry: {RETRY_MS}\n");
    match initial.pop_front() {
        Some(first) => initial.push_front(Bytes::from([retry.as_bytes(), &first].concat())),
        None => initial.push_front(Bytes::from(retry + "\n")),
    }
    let stream = EventStream {
        initial,
        receiver,
        last_seq,
        types,
        shutdown: app.shutdown.clone(),
        done: false,
    };
    let body = Body::from_stream(futures::stream::unfold(stream, EventStream::next));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn wanted(types: &Option<HashSet<String>>, event: &Published) -> bool {
    types.as_ref().is_none_or(|t| t.contains(&event.kind))
}

/// One subscriber's position in the stream.
struct EventStream {
    initial: VecDeque<Bytes>,
    receiver: Receiver<Arc<Published>>,
    last_seq: u64,
    types: Option<HashSet<String>>,
    shutdown: watch::Receiver<bool>,
    done: bool,
}

impl EventStream {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        if let Some(frame) = self.initial.pop_front() {
            return Some((Ok(frame), self));
        }
        if self.done {
            return None;
        }
        loop {
            let keep_alive = tokio::time::sleep(KEEP_ALIVE);
            tokio::select! {
                received = self.receiver.recv() => match received {
                    Ok(event) => {
                        if event.seq <= self.last_seq {
                            continue;
                        }
                        self.last_seq = event.seq;
                        if wanted(&self.types, &event) {
                            return Some((Ok(event.sse.clone()), self));
                        }
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Too slow to keep up: end the stream; the client resumes from its
                        // last id and gets the missed events from the journal (or a reset).
                        self.done = true;
                        return Some((Ok(Bytes::from_static(b": slow consumer; reconnect with Last-Event-ID\n\n")), self));
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = keep_alive => return Some((Ok(Bytes::from_static(b":\n\n")), self)),
                _ = shutdown_signal(&mut self.shutdown) => {
                    self.done = true;
                    return Some((Ok(Bytes::from_static(b": gateway shutting down\n\n")), self));
                }
            }
        }
    }
}

/// Resolves once the gateway is shutting down.
pub async fn shutdown_signal(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_split_at_the_last_dash() {
        assert_eq!(parse_event_id("k3x9-41"), Some(("k3x9", 41)));
        assert_eq!(parse_event_id("a-b-7"), Some(("a-b", 7)));
        assert_eq!(parse_event_id("nodash"), None);
        assert_eq!(parse_event_id("e-x"), None);
    }
}
