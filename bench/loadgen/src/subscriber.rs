//! One subscriber: an SSE or WebSocket connection from a loopback source address that feeds
//! what it receives to its tracker until the run stops. Reads go through one buffer per
//! thread, so an idle subscriber costs the generator little more than its socket.

use std::cell::RefCell;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Semaphore, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::http::{self, Dechunker, Url};
use crate::track::{self, Shared, Tracker};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Sse,
    Ws,
}

/// Where and how every subscriber of a run connects.
pub struct Spec {
    pub url: Url,
    pub transport: Transport,
    /// For WebSocket: the first message to send (the gateway's subscribe op).
    pub ws_subscribe: Option<String>,
}

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; 64 * 1024]);
}

/// Runs one subscriber; a failure is counted in `shared.errors` and ends it early (its
/// missing events then show as gaps).
pub async fn run(
    source: IpAddr,
    spec: Arc<Spec>,
    shared: Arc<Shared>,
    connecting: Arc<Semaphore>,
    stop: watch::Receiver<bool>,
) -> Tracker {
    let mut tracker = Tracker::new();
    let result = match spec.transport {
        Transport::Sse => sse(source, &spec, &shared, &connecting, stop, &mut tracker).await,
        Transport::Ws => ws(source, &spec, &shared, &connecting, stop, &mut tracker).await,
    };
    if let Err(error) = result
        && shared.errors.fetch_add(1, Ordering::Relaxed) < 3
    {
        eprintln!("loadgen: subscriber failed: {error:#}");
    }
    tracker
}

async fn sse(
    source: IpAddr,
    spec: &Spec,
    shared: &Shared,
    connecting: &Semaphore,
    mut stop: watch::Receiver<bool>,
    tracker: &mut Tracker,
) -> anyhow::Result<()> {
    // A stream the server cuts as a slow or lagging consumer resumes with its last id, as a
    // real client would: the run then checks that no event was lost across the cut.
    let mut resume = Resume::default();
    let mut permit = Some(connecting.acquire().await?);
    loop {
        let mut stream = http::connect(source, spec.url.addr).await?;
        let last_id = resume
            .id
            .as_ref()
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{last_id}\r\n",
            spec.url.path, spec.url.host
        );
        stream.write_all(request.as_bytes()).await?;
        let mut pending = Vec::new();
        let head = http::read_head(&mut stream, &mut pending).await?;
        if head.status != 200 {
            bail!("subscribe answered {}", head.status);
        }
        if permit.take().is_some() {
            shared.ready.fetch_add(1, Ordering::Relaxed);
        }
        read_sse(
            stream,
            head,
            pending,
            shared,
            &mut stop,
            tracker,
            &mut resume,
        )
        .await?;
        if *stop.borrow() {
            return Ok(());
        }
        if !resume.cut || resume.id.is_none() {
            bail!("the server ended the stream");
        }
        resume.cut = false;
        shared.resumes.fetch_add(1, Ordering::Relaxed);
    }
}

/// Where a cut SSE stream resumes: its last `id:`, and whether the server said it cut it.
#[derive(Default)]
struct Resume {
    id: Option<String>,
    cut: bool,
}

impl Resume {
    fn see(&mut self, block: &[u8]) {
        if block.starts_with(b": slow consumer") || block.starts_with(b": lagging") {
            self.cut = true;
        }
        for line in block.split(|&b| b == b'\n') {
            if let Some(id) = line.strip_prefix(b"id: ") {
                self.id = Some(String::from_utf8_lossy(id).into_owned());
            }
        }
    }
}

/// Reads one SSE response until it ends (`Ok`) or the run stops.
async fn read_sse(
    stream: tokio::net::TcpStream,
    head: http::Head,
    mut pending: Vec<u8>,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    tracker: &mut Tracker,
    resume: &mut Resume,
) -> anyhow::Result<()> {
    let mut dechunker = head.chunked.then(Dechunker::default);
    let mut feed = |bytes: &[u8], pending: &mut Vec<u8>, tracker: &mut Tracker| -> bool {
        let open = match dechunker.as_mut() {
            Some(d) => d.feed(bytes, pending),
            None => {
                pending.extend_from_slice(bytes);
                true
            }
        };
        let now = track::now_ns();
        track::sse_blocks_seen(
            pending,
            |block| tracker.on_message(block, now, shared),
            |block| resume.see(block),
        );
        open
    };
    feed(&head.rest, &mut pending, tracker);
    loop {
        tokio::select! {
            ready = stream.readable() => ready?,
            _ = stop.changed() => return Ok(()),
        }
        let read = READ_BUF.with_borrow_mut(|buf| match stream.try_read(buf) {
            Ok(0) => Ok(false),
            Ok(n) => Ok(feed(&buf[..n], &mut pending, tracker)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
            Err(e) => Err(e),
        })?;
        if !read {
            return Ok(());
        }
    }
}

async fn ws(
    source: IpAddr,
    spec: &Spec,
    shared: &Shared,
    connecting: &Semaphore,
    mut stop: watch::Receiver<bool>,
    tracker: &mut Tracker,
) -> anyhow::Result<()> {
    let permit = connecting.acquire().await?;
    let stream = http::connect(source, spec.url.addr).await?;
    let url = format!("ws://{}{}", spec.url.host, spec.url.path);
    let (mut socket, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .context("WebSocket handshake")?;
    if let Some(subscribe) = &spec.ws_subscribe {
        socket.send(Message::text(subscribe.clone())).await?;
    }
    let mut ready = spec.ws_subscribe.is_none();
    let mut permit = Some(permit);
    if ready {
        // Nothing to wait for (a plain channel, e.g. nchan): connected, let the next one in.
        shared.ready.fetch_add(1, Ordering::Relaxed);
        permit.take();
    }
    loop {
        let message = tokio::select! {
            m = socket.next() => m,
            _ = stop.changed() => return Ok(()),
        };
        let text = match message {
            None => bail!("the server closed the WebSocket"),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => bail!("closed by the server: {frame:?}"),
            Some(Ok(_)) => continue,
        };
        let bytes = text.as_bytes();
        if !ready {
            // The gateway acks, then sends the snapshot: from here every event is ours.
            if memchr::memmem::find(bytes, b"\"type\":\"snapshot\"").is_some() {
                ready = true;
                shared.ready.fetch_add(1, Ordering::Relaxed);
                permit.take();
            }
            continue;
        }
        tracker.on_message(bytes, track::now_ns(), shared);
    }
}
