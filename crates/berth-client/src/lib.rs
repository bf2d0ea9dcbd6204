//! A small Engine API client over a unix socket, used by the berth CLI.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

pub use hyper;

mod hijack;
pub mod stdcopy;

pub use hijack::{HijackReader, Hijacked};

/// The newest Engine API version this client speaks.
pub const API_VERSION: &str = "1.47";

pub type Body = BoxBody<Bytes, std::io::Error>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Cannot connect to the berth daemon at unix://{socket}. Is the berth daemon running?")]
    Connect { socket: String, source: std::io::Error },
    #[error("{message}")]
    Api { status: StatusCode, message: String },
    #[error("error during connect: {0}")]
    Http(String),
    #[error("invalid response from daemon: {0}")]
    Decode(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn empty() -> Body {
    Empty::<Bytes>::new().map_err(|never| match never {}).boxed()
}

pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A request body streamed from a reader (a file or stdin).
pub fn from_reader<R: tokio::io::AsyncRead + Send + Sync + 'static>(r: R) -> Body {
    use futures_util::TryStreamExt;
    let s = tokio_util::io::ReaderStream::with_capacity(r, 256 * 1024).map_ok(Frame::data);
    BodyExt::boxed(StreamBody::new(s))
}

/// Characters a path segment keeps as they are (RFC 3986 unreserved), so
/// `my-app_1.web` stays readable in request lines.
const SEGMENT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes one path segment (a container name or ID).
pub fn enc_segment(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    /// The API version requests use, settled once per client: pinned by
    /// `DOCKER_API_VERSION`, or negotiated with the daemon's `/_ping` the way
    /// docker-cli does, so an older Docker daemon (1.41) is spoken to in its
    /// own version instead of refusing "client version 1.47 is too new".
    version: Arc<tokio::sync::OnceCell<String>>,
}

impl Client {
    pub fn new(socket: &Path) -> Self {
        let version = Arc::new(tokio::sync::OnceCell::new());
        if let Ok(v) = std::env::var("DOCKER_API_VERSION") {
            let v = v.trim().trim_start_matches('v').to_string();
            if !v.is_empty() {
                let _ = version.set(v);
            }
        }
        Self { socket: socket.to_path_buf(), version }
    }

    /// A client that speaks `version` without negotiating (tests, fixed peers).
    pub fn with_version(socket: &Path, version: &str) -> Self {
        let c = Self { socket: socket.to_path_buf(), version: Arc::new(tokio::sync::OnceCell::new()) };
        let _ = c.version.set(version.to_string());
        c
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The API version in use (negotiating it first if needed).
    pub async fn api_version(&self) -> String {
        self.version.get_or_init(|| self.negotiate()).await.clone()
    }

    /// Docker's negotiation: the lower of ours and the daemon's `Api-Version`;
    /// ours when the daemon does not say (or cannot be reached: the request
    /// that follows reports that).
    async fn negotiate(&self) -> String {
        let Ok(resp) = self.send(Method::GET, "/_ping".into(), empty(), &[]).await else {
            return API_VERSION.to_string();
        };
        let theirs = resp.headers().get("api-version").and_then(|v| v.to_str().ok()).map(str::to_string);
        let _ = resp.into_body().collect().await;
        match theirs {
            Some(v) if version_less(&v, API_VERSION) => v,
            _ => API_VERSION.to_string(),
        }
    }

    /// `/vX.Y` + `path`, except for `/_ping`, which is unversioned.
    pub async fn versioned(&self, path: &str) -> String {
        if path.starts_with("/_ping") {
            path.to_string()
        } else {
            format!("/v{}{}", self.api_version().await, path)
        }
    }

    /// Sends a request; non-2xx answers become [`Error::Api`] with the daemon's message.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let resp = self.raw(method, path, body, headers).await?;
        if resp.status().is_success()
            || resp.status() == StatusCode::NOT_MODIFIED
            || resp.status() == StatusCode::SWITCHING_PROTOCOLS
        {
            return Ok(resp);
        }
        let status = resp.status();
        let bytes = resp.into_body().collect().await.map_err(|e| Error::Http(e.to_string()))?.to_bytes();
        let message = error_message(&bytes);
        Err(Error::Api { status, message })
    }

    /// Sends a request and returns whatever the daemon answered.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let uri = self.versioned(path).await;
        self.send(method, uri, body, headers).await
    }

    async fn send(
        &self,
        method: Method,
        uri: String,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let stream = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut b = Request::builder().method(method).uri(uri).header("Host", "berth");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(body).map_err(|e| Error::Http(e.to_string()))?;
        sender.send_request(req).await.map_err(|e| Error::Http(e.to_string()))
    }

    pub(crate) async fn connect(&self) -> Result<tokio::net::UnixStream> {
        tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| Error::Connect { socket: self.socket.display().to_string(), source })
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = self.request(Method::GET, path, empty(), &[]).await?;
        read_json(r).await
    }

    pub async fn post_json<T: DeserializeOwned>(&self, path: &str, body: Option<&serde_json::Value>) -> Result<T> {
        let (b, h): (Body, &[(&str, &str)]) = match body {
            Some(v) => (full(v.to_string()), &[("Content-Type", "application/json")]),
            None => (empty(), &[]),
        };
        let r = self.request(Method::POST, path, b, h).await?;
        read_json(r).await
    }

    pub async fn ping(&self) -> Result<()> {
        let r = self.request(Method::GET, "/_ping", empty(), &[]).await?;
        let _ = r.into_body().collect().await;
        Ok(())
    }
}

/// Compares dotted API versions numerically ("1.9" < "1.41").
pub fn version_less(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a) < parse(b)
}

/// Extracts the daemon's `{"message": …}` from an error body, or the body text.
pub fn error_message(bytes: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
        .unwrap_or_else(|| String::from_utf8_lossy(bytes).trim().to_string())
}

pub async fn read_bytes(r: Response<Incoming>) -> Result<Bytes> {
    Ok(r.into_body().collect().await.map_err(|e| Error::Http(e.to_string()))?.to_bytes())
}

pub async fn read_json<T: DeserializeOwned>(r: Response<Incoming>) -> Result<T> {
    let b = read_bytes(r).await?;
    serde_json::from_slice(&b).map_err(|e| Error::Decode(e.to_string()))
}

/// Reads a JSON-lines stream (`/events`, progress streams), calling `f` for each object.
pub async fn for_each_json_line(
    r: Response<Incoming>,
    mut f: impl FnMut(serde_json::Value) -> Result<bool>,
) -> Result<()> {
    let mut body = r.into_body();
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::Http(e.to_string()))?;
        if let Some(d) = frame.data_ref() {
            buf.extend_from_slice(d);
            while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let line = &line[..line.len() - 1];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let v = serde_json::from_slice(line).map_err(|e| Error::Decode(e.to_string()))?;
                if !f(v)? {
                    return Ok(());
                }
            }
        }
    }
    if !buf.iter().all(u8::is_ascii_whitespace) {
        let v = serde_json::from_slice(&buf).map_err(|e| Error::Decode(e.to_string()))?;
        f(v)?;
    }
    Ok(())
}
