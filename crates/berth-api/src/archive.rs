//! Filesystem endpoints of containers: `HEAD|GET|PUT
//! /containers/{id}/archive` (`docker cp`), `GET /containers/{id}/changes`
//! (`diff`), `GET /containers/{id}/export` and `POST /commit`.

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use serde_json::{json, Map, Value};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, json as json_resp, ok_json, Query};
use crate::State;

/// Docker's header carrying the stat of the path (base64 JSON).
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

/// A blocking writer that feeds an HTTP body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 1 << 20 {
            self.send()?;
        }
        Ok(b.len())
    }
    /// Keeps the tail buffered: it is sent by [`ChannelWriter::send_rest`]
    /// once the container is thawed, so a client that acts on the end of
    /// the stream never finds the container still frozen.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = bytes::Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("client went away"))?;
        }
        Ok(())
    }
    fn send_rest(mut self) {
        let _ = self.send();
    }
}

fn path_param(q: &Query) -> ApiResult<String> {
    match q.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("path is required")),
    }
}

fn stat_response(status: StatusCode, stat: &berth_fsops::PathStat) -> ApiResult<Response> {
    let mut r = status.into_response();
    let v = stat.header_value().map_err(|e| ApiError::internal(e.to_string()))?;
    r.headers_mut().insert(STAT_HEADER, HeaderValue::from_str(&v).map_err(|e| ApiError::internal(e.to_string()))?);
    Ok(r)
}

pub async fn head(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let path = path_param(&q)?;
    let view = st.containers.fs_view(&id, true).await?;
    let mgr = st.containers.clone();
    let stat = blocking(move || Ok(mgr.stat_path(&view, &id, &path)?)).await?;
    let mut r = stat_response(StatusCode::OK, &stat)?;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

pub async fn get(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let path = path_param(&q)?;
    let view = st.containers.fs_view(&id, true).await?;
    let mgr = st.containers.clone();
    let (id2, path2) = (id.clone(), path.clone());
    // Stat first: a missing path is a 404, not a broken stream.
    let (stat, view) = blocking(move || {
        let s = mgr.stat_path(&view, &id2, &path2)?;
        Ok((s, view))
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mgr = st.containers.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        let res = mgr.archive_path(&view, &id, &path, &mut w);
        drop(view);
        match res {
            Ok(()) => w.send_rest(),
            Err(e) => {
                tracing::warn!("archive of {path} in {id}: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let mut r = stat_response(StatusCode::OK, &stat)?;
    *r.body_mut() = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(r)
}

pub async fn put(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri, body: Body) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let path = path_param(&q)?;
    let no_overwrite = q.bool("noOverwriteDirNonDir");
    let copy_uid_gid = q.bool("copyUIDGID");
    let view = match st.containers.fs_view(&id, true).await {
        Ok(v) => v,
        Err(e) => {
            // Read (a bounded part of) the upload before answering: a client
            // still writing it would see a broken pipe instead of the error.
            let _ = axum::body::to_bytes(body, 64 << 20).await;
            return Err(e.into());
        }
    };
    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let mgr = st.containers.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _enter = handle.enter();
        let input = SyncIoBridge::new(reader);
        let res = mgr.extract_archive(&view, &id, &path, input, no_overwrite, copy_uid_gid);
        drop(view);
        res
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(StatusCode::OK.into_response())
}

pub async fn changes(AxState(st): AxState<State>, Path(id): Path<String>) -> ApiResult<Response> {
    let c = st.containers.resolve(&id)?;
    let mgr = st.containers.clone();
    let out = blocking(move || Ok(mgr.changes(&c)?)).await?;
    if out.is_empty() {
        return Ok(ok_json(&Value::Null));
    }
    Ok(ok_json(&out))
}

pub async fn export(AxState(st): AxState<State>, Path(id): Path<String>) -> ApiResult<Response> {
    let view = st.containers.fs_view(&id, false).await?;
    let c = view.container.clone();
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mgr = st.containers.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        let res = mgr.export(&view, &mut w);
        drop(view);
        match res {
            Ok(()) => w.send_rest(),
            Err(e) => {
                tracing::warn!("export: {e}");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    st.events.emit("container", "export", &c.id, &[("name", &c.name), ("image", c.image_name())]);
    let mut r = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(r)
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`.
pub async fn commit(AxState(st): AxState<State>, uri: Uri, body: Body) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let container = q.get("container").unwrap_or("").to_string();
    if container.is_empty() {
        return Err(ApiError::bad_request("No container specified"));
    }
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    let config: Map<String, Value> = if bytes.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(m)) => m,
            Ok(Value::Null) => Map::new(),
            Ok(_) => return Err(ApiError::bad_request("invalid JSON: expected an object")),
            Err(e) => return Err(ApiError::bad_request(format!("invalid JSON: {e}"))),
        }
    };
    // Docker's default is to pause (`BoolValueOrDefault(r, "pause", true)`).
    let pause = if q.get("pause").is_some() { q.bool("pause") } else { true };
    let repo = q.get("repo").unwrap_or("");
    let tag = q.get("tag").unwrap_or("");
    let mut tags = Vec::new();
    if !repo.is_empty() {
        let r = berth_image::Reference::parse(repo).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let r = if tag.is_empty() { r.with_tag("latest") } else { r.with_tag(tag) };
        tags.push(r);
    } else if !tag.is_empty() {
        return Err(ApiError::bad_request("invalid reference format: repository name must be specified with a tag"));
    }
    let id = st
        .containers
        .commit(
            &container,
            config,
            &q.all("changes"),
            q.get("comment").unwrap_or(""),
            q.get("author").unwrap_or(""),
            tags.clone(),
            pause,
        )
        .await?;
    for t in &tags {
        st.events.emit("image", "tag", &id, &[("name", &t.familiar())]);
    }
    Ok(json_resp(StatusCode::CREATED, &json!({"Id": id})))
}
