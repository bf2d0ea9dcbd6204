//! Hijacked connections: `POST /containers/{id}/attach` and `POST /exec/{id}/start`
//! answer `101 UPGRADED` and then carry the container's raw streams both ways on
//! the same socket.
//!
//! The request is written by hand rather than through hyper's upgrade support,
//! like docker's client (`client/hijack.go`), so the caller owns the socket
//! halves directly: the write half can be shut down on stdin EOF (a TCP-style
//! half-close the daemon turns into the container's stdin EOF) while output
//! keeps arriving on the read half.

use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::{error_message, Client, Error, Result};

/// Largest response head accepted before the upgrade.
const MAX_HEAD: usize = 64 * 1024;

/// Both halves of an upgraded connection.
#[derive(Debug)]
pub struct Hijacked {
    /// Output from the daemon (multiplexed frames, or raw bytes with a TTY).
    pub reader: HijackReader,
    /// Input to the container; shut it down to signal EOF.
    pub writer: OwnedWriteHalf,
    /// The response's `Content-Type` (`application/vnd.docker.multiplexed-stream`
    /// or `…raw-stream` from API 1.42).
    pub content_type: Option<String>,
}

/// The read half, first yielding bytes that arrived with the response head.
#[derive(Debug)]
pub struct HijackReader {
    pending: Vec<u8>,
    pos: usize,
    inner: OwnedReadHalf,
}

impl AsyncRead for HijackReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.pos < self.pending.len() {
            let n = buf.remaining().min(self.pending.len() - self.pos);
            let start = self.pos;
            buf.put_slice(&self.pending[start..start + n]);
            self.pos += n;
            if self.pos == self.pending.len() {
                self.pending = Vec::new();
                self.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

struct Head {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn parse_head(bytes: &[u8]) -> Result<Head> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::Decode("response head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| Error::Decode(format!("malformed status line {status_line:?}")))?;
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Head { status, headers })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decodes a `Transfer-Encoding: chunked` body that is complete in `data`;
/// returns what could be decoded.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(data, b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            out.extend_from_slice(&data[..size.min(data.len())]);
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

impl Client {
    /// Sends `POST path` asking for an upgrade to a raw stream and returns the
    /// connection once the daemon answers 101. A JSON `body` is sent as exec
    /// start's `{"Detach":false,"Tty":…}`; without one the request is empty, as
    /// docker sends attach.
    pub async fn hijack(&self, path: &str, body: Option<&serde_json::Value>) -> Result<Hijacked> {
        let uri = self.versioned(path).await;
        let stream = self.connect().await?;
        let (content_type, payload) = match body {
            Some(v) => ("application/json", v.to_string().into_bytes()),
            None => ("text/plain", Vec::new()),
        };
        let mut request = format!(
            "POST {uri} HTTP/1.1\r\nHost: berth\r\nUser-Agent: berth-cli/{}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\
             Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            payload.len()
        )
        .into_bytes();
        request.extend_from_slice(&payload);
        let (mut rd, mut wr) = stream.into_split();
        wr.write_all(&request).await?;

        let mut buf = Vec::with_capacity(4096);
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD {
                return Err(Error::Decode("response head too large".into()));
            }
            let mut chunk = [0u8; 4096];
            let n = rd.read(&mut chunk).await?;
            if n == 0 {
                return Err(Error::Http("the daemon closed the connection before answering".into()));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = parse_head(&buf[..end])?;
        let rest = buf[end + 4..].to_vec();
        if head.status == 101 {
            return Ok(Hijacked {
                content_type: head.header("content-type").map(str::to_string),
                reader: HijackReader { pending: rest, pos: 0, inner: rd },
                writer: wr,
            });
        }
        // Not upgraded: read the error body the daemon sent with it.
        let mut body = rest;
        let chunked = head.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
        let length = head.header("content-length").and_then(|v| v.parse::<usize>().ok());
        loop {
            let complete = match length {
                Some(n) => body.len() >= n,
                None => chunked && find(&body, b"0\r\n\r\n").is_some(),
            };
            if complete || body.len() > MAX_HEAD {
                break;
            }
            let mut chunk = [0u8; 4096];
            let n = rd.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        if chunked {
            body = dechunk(&body);
        }
        let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_client_error() || status.is_server_error() {
            return Err(Error::Api { status, message: error_message(&body) });
        }
        Err(Error::Http(format!("unable to upgrade to tcp, received {}", head.status)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing() {
        let h = parse_head(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nUpgrade: tcp")
            .unwrap();
        assert_eq!(h.status, 101);
        assert_eq!(h.header("content-type"), Some("application/vnd.docker.raw-stream"));
        assert!(parse_head(b"garbage").is_err());
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), b"hello world");
        assert_eq!(dechunk(b"5\r\nhel"), b"hel");
    }
}
