//! Helpers for the downstream-stream tests: a raw HTTP/1.1 client over a plain `TcpStream`
//! (small receive buffers, reading only when told, chunked decoding, SSE frames as sent),
//! a streaming leak scanner that never keeps what it scanned, stream ids, padded events,
//! and the test process's resident memory.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::{ACCOUNT_NUMBERS, SECRET_MARKERS};

/// Scans bytes for full account numbers and secrets as they arrive, keeping nothing but a
/// short tail per stream (a needle may straddle two chunks).
pub struct LeakScan {
    needles: Vec<String>,
    hits: Mutex<Vec<String>>,
    scanned: AtomicU64,
}

impl LeakScan {
    /// The demo account numbers, the simulator's token markers, and `extra` (API-key secrets).
    pub fn new(extra: &[&str]) -> Arc<Self> {
        let needles = ACCOUNT_NUMBERS
            .iter()
            .chain(SECRET_MARKERS.iter())
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect();
        Arc::new(Self {
            needles,
            hits: Mutex::default(),
            scanned: AtomicU64::new(0),
        })
    }

    /// Scans one self-contained piece (a header block, a body, a WebSocket message).
    pub fn scan(&self, what: &str, bytes: &[u8]) {
        self.scanned
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let text = String::from_utf8_lossy(bytes);
        for needle in &self.needles {
            if let Some(at) = text.find(needle.as_str()) {
                let around = &text.as_bytes()
                    [at.saturating_sub(60)..(at + needle.len() + 60).min(text.len())];
                self.hits.lock().unwrap().push(format!(
                    "`{needle}` in {what}: ...{}...",
                    String::from_utf8_lossy(around)
                ));
            }
        }
    }

    /// A scanner for one byte stream read in chunks.
    pub fn stream(self: &Arc<Self>, what: impl Into<String>) -> StreamScan {
        StreamScan {
            scan: self.clone(),
            what: what.into(),
            tail: Vec::new(),
        }
    }

    pub fn scanned(&self) -> u64 {
        self.scanned.load(Ordering::Relaxed)
    }

    /// Fails on any hit, and if fewer than `at_least` bytes were scanned (a scan of nothing
    /// proves nothing).
    pub fn assert_clean(&self, at_least: u64) {
        let hits = self.hits.lock().unwrap();
        assert!(
            hits.is_empty(),
            "{} leak(s), first: {}",
            hits.len(),
            hits.first().cloned().unwrap_or_default()
        );
        assert!(
            self.scanned() >= at_least,
            "the leak scan saw only {} bytes (expected at least {at_least})",
            self.scanned()
        );
    }
}

/// The per-stream state of a [`LeakScan`].
pub struct StreamScan {
    scan: Arc<LeakScan>,
    what: String,
    tail: Vec<u8>,
}

impl StreamScan {
    pub fn feed(&mut self, chunk: &[u8]) {
        let longest = self.scan.needles.iter().map(String::len).max().unwrap_or(1);
        let mut window = std::mem::take(&mut self.tail);
        let carried = window.len();
        window.extend_from_slice(chunk);
        self.scan.scan(&self.what, &window);
        // The carried bytes were counted already.
        self.scan
            .scanned
            .fetch_sub(carried as u64, Ordering::Relaxed);
        let keep = window.len().min(longest - 1);
        self.tail = window[window.len() - keep..].to_vec();
    }
}

/// A response head as read off the wire.
#[derive(Debug, Clone)]
pub struct Head {
    pub status: u16,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub raw: String,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One SSE frame exactly as sent: its lines, without the blank line that ended it.
#[derive(Debug, Clone, PartialEq)]
pub struct RawFrame {
    pub lines: Vec<String>,
}

impl RawFrame {
    fn field(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
    }
    pub fn id(&self) -> Option<&str> {
        self.field("id")
    }
    pub fn event(&self) -> Option<&str> {
        self.field("event")
    }
    pub fn data(&self) -> Option<&str> {
        self.field("data")
    }
    pub fn retry(&self) -> Option<&str> {
        self.field("retry")
    }
    pub fn json(&self) -> Value {
        let data = self.data().unwrap_or_else(|| panic!("no data in {self:?}"));
        serde_json::from_str(data).unwrap_or_else(|e| panic!("data is not JSON ({e}): {data}"))
    }
}

/// An HTTP/1.1 GET over a plain socket that reads only when asked: for slow consumers,
/// keep-alive timing and byte-exact SSE.
pub struct RawHttp {
    stream: TcpStream,
    /// Bytes read but not yet decoded.
    pending: Vec<u8>,
    pub head: Head,
    /// The decoded body so far.
    pub body: Vec<u8>,
    chunked: bool,
    /// `Content-Length`, when given.
    length: Option<usize>,
    /// Complete frames in `body` (blank lines seen), counted as the body grows.
    frame_ends: usize,
    counted: usize,
    newline: bool,
    /// The terminating chunk, the whole `Content-Length` or EOF was seen.
    pub ended: bool,
    scan: Option<StreamScan>,
}

impl RawHttp {
    /// Sends `GET path` with `headers`; `recv_buffer` sets SO_RCVBUF before connecting.
    /// Reads the response head (and whatever body came with it).
    pub async fn get(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        recv_buffer: Option<u32>,
        scan: Option<&Arc<LeakScan>>,
    ) -> Self {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let mut stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut this = Self {
            stream,
            pending: Vec::new(),
            head: Head {
                status: 0,
                headers: Vec::new(),
                raw: String::new(),
            },
            body: Vec::new(),
            chunked: false,
            length: None,
            frame_ends: 0,
            counted: 0,
            newline: false,
            ended: false,
            scan: scan.map(|s| s.stream(format!("raw GET {path}"))),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let end = loop {
            if let Some(at) = find(&this.pending, b"\r\n\r\n") {
                break at;
            }
            assert_eq!(
                this.read_once(deadline).await,
                Some(true),
                "no response head (closed, or nothing within 5 s)"
            );
        };
        let raw = String::from_utf8_lossy(&this.pending[..end]).to_string();
        this.pending.drain(..end + 4);
        let mut lines = raw.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        this.chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        this.length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok());
        this.head = Head {
            status,
            headers,
            raw,
        };
        this.decode();
        this
    }

    /// One read (up to 64 KiB): `Some(false)` on EOF, `None` if nothing came by `deadline`.
    async fn read_once(&mut self, deadline: Instant) -> Option<bool> {
        let mut buffer = vec![0u8; 64 * 1024];
        let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buffer))
            .await
            .ok()?
            .unwrap_or(0);
        if let Some(scan) = &mut self.scan {
            scan.feed(&buffer[..read]);
        }
        self.pending.extend_from_slice(&buffer[..read]);
        Some(read > 0)
    }

    /// Moves what is complete from `pending` to `body` (dechunked), counting frames.
    fn decode(&mut self) {
        self.dechunk();
        for &byte in &self.body[self.counted..] {
            if byte == b'\n' && self.newline {
                self.frame_ends += 1;
                self.newline = false;
            } else {
                self.newline = byte == b'\n';
            }
        }
        self.counted = self.body.len();
    }

    fn dechunk(&mut self) {
        if !self.chunked {
            self.body.append(&mut self.pending);
            if self.length.is_some_and(|length| self.body.len() >= length) {
                self.ended = true;
            }
            return;
        }
        loop {
            let Some(line_end) = find(&self.pending, b"\r\n") else {
                return;
            };
            let size_text = String::from_utf8_lossy(&self.pending[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_text:?}"));
            if size == 0 {
                self.ended = true;
                self.pending.clear();
                return;
            }
            let start = line_end + 2;
            if self.pending.len() < start + size + 2 {
                return;
            }
            self.body
                .extend_from_slice(&self.pending[start..start + size]);
            assert_eq!(&self.pending[start + size..start + size + 2], b"\r\n");
            self.pending.drain(..start + size + 2);
        }
    }

    /// Reads until `done(self)` holds or the body ends; false if it ended first. Fails the
    /// test when nothing more comes within `limit`.
    async fn read_while(
        &mut self,
        limit: Duration,
        what: &str,
        done: impl Fn(&Self) -> bool,
    ) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            if self.ended {
                return false;
            }
            match self.read_once(deadline).await {
                Some(true) => self.decode(),
                Some(false) => {
                    self.ended = true;
                    return done(self);
                }
                None => panic!(
                    "waited {limit:?} for {what}; the body so far ends with: {:?}",
                    self.tail_text()
                ),
            }
        }
    }

    /// Reads whatever arrives until nothing has for `quiet` (or the body ends).
    pub async fn read_quiet(&mut self, quiet: Duration) {
        while !self.ended {
            match self.read_once(Instant::now() + quiet).await {
                None => return,
                Some(false) => self.ended = true,
                Some(true) => self.decode(),
            }
        }
    }

    /// Reads until the body holds `complete` whole frames; returns every frame so far.
    pub async fn read_frames(&mut self, complete: usize, limit: Duration) -> Vec<RawFrame> {
        let what = format!("{complete} frames");
        let ok = self
            .read_while(limit, &what, |this| this.frame_ends >= complete)
            .await;
        assert!(
            ok,
            "the stream ended before {complete} frames: {:?}",
            self.tail_text()
        );
        frames_of(&self.body)
    }

    /// Reads until the body ends (terminating chunk or EOF).
    pub async fn read_to_end(&mut self, limit: Duration) {
        self.read_while(limit, "the end of the body", |_| false)
            .await;
        assert!(self.ended);
    }

    /// The last 300 bytes of the body, for failure messages.
    fn tail_text(&self) -> String {
        let from = self.body.len().saturating_sub(300);
        String::from_utf8_lossy(&self.body[from..]).to_string()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn frames(&self) -> Vec<RawFrame> {
        frames_of(&self.body)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The complete frames of an SSE body (`\n`-separated lines, frames ended by a blank line).
pub fn frames_of(body: &[u8]) -> Vec<RawFrame> {
    let text = String::from_utf8_lossy(body);
    let Some(last) = text.rfind("\n\n") else {
        return Vec::new();
    };
    text[..last]
        .split("\n\n")
        .map(|frame| RawFrame {
            lines: frame.split('\n').map(str::to_string).collect(),
        })
        .collect()
}

/// Parses a whole SSE body with eventsource-stream, failing on any parser error.
pub async fn parse_with_eventsource(body: &[u8]) -> Vec<eventsource_stream::Event> {
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(997)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let mut stream = futures::stream::iter(chunks).eventsource();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.unwrap_or_else(|e| panic!("eventsource-stream failed: {e}")));
    }
    events
}

/// The test process's resident memory, in KiB (the gateway runs in it).
pub fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Splits `<epoch>-<seq>`.
pub fn split_id(id: &str) -> (String, u64) {
    let (epoch, seq) = id
        .rsplit_once('-')
        .unwrap_or_else(|| panic!("id {id:?} is <epoch>-<seq>"));
    (
        epoch.to_string(),
        seq.parse()
            .unwrap_or_else(|_| panic!("id {id:?} ends in a seq")),
    )
}

/// A compact `/v1/events` id read: the epoch, the place in the log's order, and the accounts
/// named apart from it.
pub type OrderedId = (String, u64, Vec<(String, u64)>);

/// A compact `/v1/events` id, `<epoch>-~<order>~<set>.<id>.<seq>...`; `None` if the id is
/// not one.
pub fn split_ordered(id: &str) -> Option<OrderedId> {
    let (epoch, rest) = id.split_once('-')?;
    let mut parts = rest.strip_prefix('~')?.split('.');
    let (order, set) = parts.next()?.split_once('~')?;
    let order = order.parse().ok()?;
    if set.is_empty() {
        return None;
    }
    let parts: Vec<&str> = parts.collect();
    if !parts.len().is_multiple_of(2) {
        return None;
    }
    let pairs = parts
        .chunks(2)
        .map(|p| Some((p[0].to_string(), p[1].parse().ok()?)))
        .collect::<Option<Vec<_>>>()?;
    Some((epoch.to_string(), order, pairs))
}

/// Reads `<epoch>-<id>.<seq>.<id>.<seq>` into the epoch and (id, seq) pairs.
pub fn split_combined(id: &str) -> (String, Vec<(String, u64)>) {
    let (epoch, rest) = id
        .split_once('-')
        .unwrap_or_else(|| panic!("combined id {id:?}"));
    let parts: Vec<&str> = rest.split('.').collect();
    assert_eq!(parts.len() % 2, 0, "combined id {id:?} has id.seq pairs");
    let pairs = parts
        .chunks(2)
        .map(|p| {
            (
                p[0].to_string(),
                p[1].parse()
                    .unwrap_or_else(|_| panic!("combined id {id:?}: bad seq")),
            )
        })
        .collect();
    (epoch.to_string(), pairs)
}

/// A padded `Order` (for byte-heavy workloads): ~`pad` bytes of filler in an unknown field;
/// `version` orders the updates of one order id (its `updated-at`).
pub fn padded_order(id: u64, version: u64, pad: usize) -> Value {
    json!({
        "id": id,
        "status": "Live",
        "size": 1,
        "price": "1.5",
        "updated-at": 4_102_444_800_000_i64 + version as i64,
        "padding": "x".repeat(pad),
    })
}

/// Resumes `/v1/accounts/individual/events` from `<epoch>-<cut_at>` and checks it gives
/// exactly the events `cut_at + 1 ..= last_seq`, in order (what a cut subscriber must get).
pub async fn assert_resume_gives_the_rest(
    addr: SocketAddr,
    epoch: &str,
    cut_at: u64,
    last_seq: u64,
    scan: Option<&Arc<LeakScan>>,
) {
    let last_id = format!("{epoch}-{cut_at}");
    let mut resumed = RawHttp::get(
        addr,
        "/v1/accounts/individual/events",
        &[("Last-Event-ID", &last_id)],
        None,
        scan,
    )
    .await;
    let missing = (last_seq - cut_at) as usize;
    let frames = resumed.read_frames(missing, Duration::from_secs(20)).await;
    for (n, frame) in frames.iter().enumerate() {
        assert_eq!(
            frame.id(),
            Some(format!("{epoch}-{}", cut_at + 1 + n as u64).as_str())
        );
    }
}
