//! Image endpoints: list, inspect, history, tag, delete, prune, load, save, import.

use axum::body::Body;
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use berth_image::archive::{self, ImportOptions};
use berth_image::store::DeleteItem;
use berth_image::{Image, Reference};
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, glob_match, ok_json, parse_timestamp, Query};
use crate::{ApiVersion, State};

pub(crate) fn created_unix(img: &Image) -> i64 {
    chrono::DateTime::parse_from_rfc3339(img.config.created())
        .map(|t| t.timestamp())
        .unwrap_or(img.added_at / 1_000_000_000)
}

fn labels_value(img: &Image) -> Value {
    let l = img.config.labels();
    if l.is_empty() {
        Value::Null
    } else {
        Value::Object(l)
    }
}

pub(crate) fn summary(img: &Image, v: ApiVersion) -> Value {
    let mut o = json!({
        "Containers": -1,
        "Created": created_unix(img),
        "Id": img.id,
        "Labels": labels_value(img),
        "ParentId": img.parent,
        "RepoDigests": img.repo_digests(),
        "RepoTags": img.repo_tags(),
        "SharedSize": -1,
        "Size": img.size(),
    });
    if v.below(1, 44) {
        o["VirtualSize"] = json!(img.size());
    }
    o
}

const IMAGE_FILTERS: &[&str] = &["dangling", "label", "label!", "reference", "before", "since", "until"];

pub async fn list(AxState(st): AxState<State>, Extension(v): Extension<ApiVersion>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let f = q.filters()?;
    f.validate(IMAGE_FILTERS)?;
    let dangling = f.bool("dangling")?;
    let until = f.get("until").first().map(|s| parse_timestamp(s)).transpose()?;
    let st2 = st.clone();
    let mut images = blocking(move || Ok(st2.images.list()?)).await?;
    // Newest first by creation time, as moby sorts its list.
    images.sort_by_key(|i| std::cmp::Reverse(created_unix(i)));
    let created_of = |name: &str| -> ApiResult<i64> {
        let img = images
            .iter()
            .find(|i| {
                i.id == name
                    || i.id.trim_start_matches("sha256:").starts_with(name)
                    || i.repo_tags().iter().any(|t| t == name || t.trim_end_matches(":latest") == name)
            })
            .ok_or_else(|| ApiError::not_found(format!("No such image: {name}")))?;
        Ok(created_unix(img))
    };
    let before = f.get("before").first().map(|n| created_of(n)).transpose()?;
    let since = f.get("since").first().map(|n| created_of(n)).transpose()?;
    let all = q.bool("all");
    let parents: std::collections::HashSet<&str> =
        images.iter().map(|i| i.parent.as_str()).filter(|p| !p.is_empty()).collect();
    let cache = st.builder.cache_images();
    let mut out = Vec::new();
    for img in &images {
        let is_dangling = img.tags.is_empty() && img.digests.is_empty();
        // Without `all`, Docker hides untagged intermediate images (those
        // with children, such as the steps of a build); untagged build
        // cache results are hidden likewise.
        if !all && is_dangling && (parents.contains(img.id.as_str()) || cache.contains(&img.id)) {
            continue;
        }
        if let Some(d) = dangling {
            if d != is_dangling {
                continue;
            }
        }
        if !f.labels_match("label", &img.config.labels()) {
            continue;
        }
        if f.has("label!")
            && f.get("label!").iter().any(|l| {
                let labels = img.config.labels();
                match l.split_once('=') {
                    Some((k, val)) => labels.get(k).and_then(Value::as_str) == Some(val),
                    None => labels.contains_key(l.as_str()),
                }
            })
        {
            continue;
        }
        let c = created_unix(img);
        if before.is_some_and(|b| c >= b) || since.is_some_and(|s| c <= s) || until.is_some_and(|u| c as f64 > u) {
            continue;
        }
        let mut summary_img = img.clone();
        if f.has("reference") {
            // Docker keeps the image if any reference matches, and lists only the
            // matching tags.
            let pats = f.get("reference");
            let matches = |r: &Reference| {
                pats.iter().any(|p| {
                    glob_match(p, &r.familiar_name()) || glob_match(p, &r.familiar()) || glob_match(p, &r.to_string())
                })
            };
            summary_img.tags.retain(&matches);
            summary_img.digests.retain(&matches);
            if summary_img.tags.is_empty() && summary_img.digests.is_empty() {
                continue;
            }
        }
        out.push(summary(&summary_img, v));
    }
    Ok(ok_json(&out))
}

/// `GET /images/{name}/json`, `/images/{name}/history`, `/images/{name}/get`:
/// names contain slashes, so the suffix selects the endpoint.
pub async fn get_dispatch(
    AxState(st): AxState<State>,
    Extension(v): Extension<ApiVersion>,
    Path(rest): Path<String>,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        return inspect(st, v, name.to_string()).await;
    }
    if let Some(name) = rest.strip_suffix("/history") {
        return history(st, name.to_string()).await;
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return save(st, vec![name.to_string()]).await;
    }
    Err(ApiError::not_found(format!("page not found: /images/{rest}")))
}

pub async fn post_dispatch(
    AxState(st): AxState<State>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    if let Some(name) = rest.strip_suffix("/tag") {
        return tag(st, name.to_string(), q).await;
    }
    if let Some(name) = rest.strip_suffix("/push") {
        return crate::registry::push(st, name.to_string(), q, &headers).await;
    }
    Err(ApiError::not_found(format!("page not found: /images/{rest}")))
}

fn rfc3339_nanos(s: &str) -> String {
    // Docker prints Created with nanoseconds, trimmed like Go's RFC3339Nano.
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Err(_) => s.to_string(),
    }
}

/// The container config of an image as Docker's inspect shows it: every
/// field present (clients index them directly).
fn inspect_config(img: &Image) -> Value {
    let mut base = berth_image::config::default_container_config();
    for (k, val) in img.config.container_config() {
        base.insert(k, val);
    }
    Value::Object(base)
}

async fn inspect(st: State, v: ApiVersion, name: String) -> ApiResult<Response> {
    let st2 = st.clone();
    let img = blocking(move || Ok(st2.images.get(&name)?)).await?;
    let c = &img.config;
    let snap_root = st.info.data_root.join("snapshots");
    let mut o = json!({
        "Id": img.id,
        "RepoTags": img.repo_tags(),
        "RepoDigests": img.repo_digests(),
        "Parent": img.parent,
        "Comment": c.str_field("comment"),
        "Created": rfc3339_nanos(c.created()),
        "DockerVersion": c.str_field("docker_version"),
        "Author": c.str_field("author"),
        "Config": inspect_config(&img),
        "Architecture": c.str_field("architecture"),
        "Os": c.str_field("os"),
        "Size": img.size(),
        "GraphDriver": {
            "Data": {"LowerDir": snap_root.display().to_string()},
            "Name": st.info.storage_driver
        },
        "RootFS": {"Type": "layers", "Layers": c.rootfs.diff_ids},
        "Metadata": {"LastTagTime": if img.last_tag_time.is_empty() { "0001-01-01T00:00:00Z".to_string() } else { img.last_tag_time.clone() }}
    });
    if let Some(var) = c.raw.get("variant").and_then(Value::as_str) {
        o["Variant"] = json!(var);
    }
    if v.below(1, 44) {
        o["VirtualSize"] = json!(img.size());
    }
    if v.below(1, 45) {
        o["Container"] = json!(c.str_field("container"));
        o["ContainerConfig"] = c.raw.get("container_config").cloned().unwrap_or_else(|| inspect_config(&img));
    }
    Ok(ok_json(&o))
}

async fn history(st: State, name: String) -> ApiResult<Response> {
    let img = blocking(move || Ok(st.images.get(&name)?)).await?;
    let mut rows = Vec::new();
    let mut layer_idx = 0usize;
    let hist = if img.config.history.is_empty() {
        // Images without history get one entry per layer, as Docker synthesises.
        img.layers.iter().map(|_| berth_image::config::History::default()).collect()
    } else {
        img.config.history.clone()
    };
    for h in &hist {
        let size = if h.empty_layer {
            0
        } else {
            let s = img.layers.get(layer_idx).map(|l| l.size).unwrap_or(0);
            layer_idx += 1;
            s
        };
        let created = h
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0);
        rows.push(json!({
            "Comment": h.comment.clone().unwrap_or_default(),
            "Created": created,
            "CreatedBy": h.created_by.clone().unwrap_or_default(),
            "Id": "<missing>",
            "Size": size,
            "Tags": Value::Null,
        }));
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top["Id"] = json!(img.id);
        let tags = img.repo_tags();
        top["Tags"] = if tags.is_empty() { Value::Null } else { json!(tags) };
    }
    Ok(ok_json(&rows))
}

async fn tag(st: State, name: String, q: Query) -> ApiResult<Response> {
    let repo = q.str_or("repo", "").to_string();
    let tag = q.str_or("tag", "").to_string();
    if repo.is_empty() {
        return Err(ApiError::bad_request("repository name must have at least one component"));
    }
    let full = if tag.is_empty() { repo.clone() } else { format!("{repo}:{tag}") };
    let r = Reference::parse_with_default_tag(&full)?;
    if r.digest.is_some() {
        return Err(ApiError::bad_request("refusing to create a tag with a digest reference"));
    }
    let st2 = st.clone();
    let r2 = r.clone();
    let id = blocking(move || {
        let id = st2.images.resolve(&name)?;
        st2.images.tag(&id, &r2)?;
        Ok(id)
    })
    .await?;
    st.events.emit("image", "tag", &id, &[("name", &r.familiar())]);
    Ok(StatusCode::CREATED.into_response())
}

pub async fn delete(AxState(st): AxState<State>, Path(name): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let force = q.bool("force");
    let st2 = st.clone();
    let items = blocking(move || Ok(st2.images.delete(&name, force, st2.usage.as_ref())?)).await?;
    emit_deletes(&st, &items);
    Ok(ok_json(&delete_items_json(&items)))
}

fn emit_deletes(st: &State, items: &[DeleteItem]) {
    for it in items {
        match it {
            DeleteItem::Untagged(t) => st.events.emit("image", "untag", t, &[("name", t)]),
            DeleteItem::Deleted(id) => st.events.emit("image", "delete", id, &[("name", id)]),
        }
    }
}

fn delete_items_json(items: &[DeleteItem]) -> Vec<Value> {
    items
        .iter()
        .map(|i| match i {
            DeleteItem::Untagged(t) => json!({"Untagged": t}),
            DeleteItem::Deleted(d) => json!({"Deleted": d}),
        })
        .collect()
}

pub async fn prune(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let f = q.filters()?;
    f.validate(&["dangling", "label", "label!", "until"])?;
    // dangling=false means "all unused images" (docker image prune -a).
    let all = f.bool("dangling")? == Some(false);
    let until = f.get("until").first().map(|s| parse_timestamp(s)).transpose()?;
    let st2 = st.clone();
    let (items, reclaimed) = blocking(move || {
        // Untagged build cache results are pruned by `builder prune`.
        let cache = st2.builder.cache_images();
        let keep = |img: &Image| {
            if cache.contains(&img.id) && img.tags.is_empty() {
                return false;
            }
            let labels = img.config.labels();
            let created = created_unix(img) as f64;
            f.labels_match("label", &labels)
                && !f.get("label!").iter().any(|l| match l.split_once('=') {
                    Some((k, val)) => labels.get(k).and_then(Value::as_str) == Some(val),
                    None => labels.contains_key(l.as_str()),
                })
                && until.is_none_or(|u| created < u)
        };
        Ok(st2.images.prune(all, st2.usage.as_ref(), &keep)?)
    })
    .await?;
    emit_deletes(&st, &items);
    st.events.emit("image", "prune", "", &[("reclaimed", &reclaimed.to_string())]);
    let deleted = if items.is_empty() { Value::Null } else { json!(delete_items_json(&items)) };
    Ok(ok_json(&json!({"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed})))
}

/// A blocking reader over a request body.
fn body_reader(
    body: Body,
) -> SyncIoBridge<StreamReader<impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>>, bytes::Bytes>> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    SyncIoBridge::new(StreamReader::new(stream))
}

/// Reads what is left of a request body after an early error, so the client
/// (still sending) gets to read the error instead of a broken pipe — Go's
/// server does the same for small bodies. Bounded: a huge upload is cut.
fn drain(r: &mut impl std::io::Read) {
    let _ = std::io::copy(&mut std::io::Read::take(r, 1 << 30), &mut std::io::sink());
}

fn json_stream_response(lines: Vec<Value>) -> Response {
    let mut body = Vec::new();
    for l in lines {
        body.extend_from_slice(l.to_string().as_bytes());
        body.push(b'\n');
    }
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub async fn load(AxState(st): AxState<State>, uri: Uri, body: Body) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let quiet = q.bool("quiet");
    let mut reader = body_reader(body);
    let st2 = st.clone();
    let (loaded, lines) = blocking(move || {
        let mut lines = Vec::new();
        let r = archive::load(&st2.images, &mut reader, &mut |l| lines.push(l));
        if r.is_err() {
            drain(&mut reader);
        }
        Ok((r?, lines))
    })
    .await?;
    for l in &loaded {
        st.events.emit("image", "load", &l.id, &[("name", &l.id)]);
    }
    let _ = quiet;
    Ok(json_stream_response(lines.into_iter().map(|l| json!({"stream": l})).collect()))
}

pub async fn save_many(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    save(st, q.all("names")).await
}

/// A blocking writer that feeds an HTTP body.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 1 << 20 {
            self.flush()?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = bytes::Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("client went away"))?;
        }
        Ok(())
    }
}

async fn save(st: State, names: Vec<String>) -> ApiResult<Response> {
    // Resolve first so a missing image is a 404, not a broken stream.
    let st2 = st.clone();
    let names2 = names.clone();
    let ids = blocking(move || {
        names2.iter().map(|n| st2.images.resolve(n).map_err(ApiError::from)).collect::<ApiResult<Vec<_>>>()
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let st3 = st.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        if let Err(e) = archive::save(&st3.images, &names, &mut w) {
            tracing::warn!("save failed: {e}");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    for id in &ids {
        st.events.emit("image", "save", id, &[("name", id)]);
    }
    let mut r = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-tar"));
    Ok(r)
}

/// `POST /images/create`: `fromSrc` imports a root filesystem; `fromImage`
/// pulls from a registry.
pub async fn create(AxState(st): AxState<State>, uri: Uri, headers: HeaderMap, body: Body) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    if let Some(src) = q.get("fromSrc") {
        let src = src.to_string();
        if src != "-" {
            return Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "importing from a URL is not supported; send the archive in the request body (fromSrc=-)",
            ));
        }
        let repo = q.str_or("repo", "").to_string();
        let tag = q.str_or("tag", "").to_string();
        let tag_ref = if repo.is_empty() {
            None
        } else {
            let full = if tag.is_empty() { repo } else { format!("{repo}:{tag}") };
            Some(Reference::parse_with_default_tag(&full)?)
        };
        let opts = ImportOptions {
            tag: tag_ref.clone(),
            changes: q.all("changes"),
            message: q.str_or("message", "").to_string(),
            source: src,
        };
        let mut reader = body_reader(body);
        let st2 = st.clone();
        let id = blocking(move || {
            let r = archive::import(&st2.images, &mut reader, &opts);
            if r.is_err() {
                drain(&mut reader);
            }
            Ok(r?)
        })
        .await?;
        let name = tag_ref.map(|r| r.familiar()).unwrap_or_else(|| id.clone());
        st.events.emit("image", "import", &id, &[("name", &name)]);
        return Ok(json_stream_response(vec![json!({"status": id})]));
    }
    if q.get("fromImage").is_some() {
        return crate::registry::pull(st, q, &headers).await;
    }
    Err(ApiError::bad_request("either fromSrc or fromImage is required"))
}
