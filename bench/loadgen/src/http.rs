//! Just enough HTTP/1.1 for a load generator: connect from a chosen loopback source address
//! (so N connections can pass one address's port range), read a response head, and undo
//! chunked transfer encoding incrementally. Written by hand so a subscriber costs one
//! buffer and one task, and the generator stays cheaper per delivery than the servers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// `http://host:port/path` split up.
#[derive(Clone, Debug)]
pub struct Url {
    pub addr: SocketAddr,
    pub host: String,
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("ws://"))
            .with_context(|| format!("{text}: only http:// and ws:// URLs"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let addr: SocketAddr = host
            .parse()
            .with_context(|| format!("{text}: the host must be ip:port"))?;
        if !addr.ip().is_loopback() {
            bail!("{text}: the benchmark only sends traffic to loopback addresses");
        }
        Ok(Self {
            addr,
            host: host.to_string(),
            path: path.to_string(),
        })
    }
}

/// The `i`-th of `count` source addresses 127.0.0.2, 127.0.0.3, ...
pub fn source(i: usize, count: usize) -> IpAddr {
    let n = (i % count.max(1)) as u32 + 2;
    IpAddr::V4(Ipv4Addr::from(0x7f00_0000 | n))
}

/// Connects to `to` from `from` (port chosen by the kernel).
pub async fn connect(from: IpAddr, to: SocketAddr) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if to.ip().is_loopback() && from.is_loopback() {
        socket.bind(SocketAddr::new(from, 0))?;
    }
    let stream = socket.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A response head: status and whether the body is chunked; `rest` holds the body bytes
/// that came with it.
pub struct Head {
    pub status: u16,
    pub chunked: bool,
    pub rest: Vec<u8>,
}

/// Reads until the end of the response head.
pub async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Head> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let text = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status = text
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .context("no status line")?;
            let chunked = text
                .lines()
                .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
            let rest = buf[end + 4..].to_vec();
            buf.clear();
            return Ok(Head {
                status,
                chunked,
                rest,
            });
        }
        if buf.len() > 64 * 1024 {
            bail!("response head too long");
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("closed before the response head");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends a request with a body, no waiting.
pub async fn write_post<W: AsyncWrite + Unpin>(
    stream: &mut W,
    url: &Url,
    content_type: &str,
    body: &[u8],
) -> anyhow::Result<()> {
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        url.path,
        url.host,
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    stream.write_all(&request).await?;
    Ok(())
}

pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Undoes chunked transfer encoding as bytes arrive.
#[derive(Default)]
pub struct Dechunker {
    state: State,
    size: usize,
}

#[derive(Default, Clone, Copy, PartialEq)]
enum State {
    /// Reading the hex size.
    #[default]
    Size,
    /// Skipping a chunk extension up to the CRLF.
    Extension,
    /// The LF after the size line's CR.
    SizeLf,
    Data,
    /// The CRLF after the data.
    DataCr,
    DataLf,
    /// The last chunk was read.
    Done,
}

impl Dechunker {
    /// Appends the payload bytes of `input` to `out`; false once the body ended or broke.
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> bool {
        while !input.is_empty() {
            match self.state {
                State::Size => {
                    let b = input[0];
                    input = &input[1..];
                    match b {
                        b'0'..=b'9' => self.size = self.size * 16 + (b - b'0') as usize,
                        b'a'..=b'f' => self.size = self.size * 16 + (b - b'a' + 10) as usize,
                        b'A'..=b'F' => self.size = self.size * 16 + (b - b'A' + 10) as usize,
                        b'\r' => self.state = State::SizeLf,
                        b';' => self.state = State::Extension,
                        _ => return false,
                    }
                }
                State::Extension => {
                    if input[0] == b'\r' {
                        self.state = State::SizeLf;
                    }
                    input = &input[1..];
                }
                State::SizeLf => {
                    input = &input[1..];
                    if self.size == 0 {
                        self.state = State::Done;
                        return false;
                    }
                    self.state = State::Data;
                }
                State::Data => {
                    let take = self.size.min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.size -= take;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                }
                State::DataCr => {
                    input = &input[1..];
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    input = &input[1..];
                    self.state = State::Size;
                }
                State::Done => return false,
            }
        }
        self.state != State::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_across_any_split() {
        let wire = b"5\r\nhello\r\n7;x=1\r\n, world\r\n0\r\n\r\n";
        for split in 0..wire.len() {
            let mut d = Dechunker::default();
            let mut out = Vec::new();
            d.feed(&wire[..split], &mut out);
            d.feed(&wire[split..], &mut out);
            assert_eq!(out, b"hello, world", "split at {split}");
        }
    }
}
