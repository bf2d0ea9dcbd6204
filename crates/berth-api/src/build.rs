//! `POST /build` (the legacy builder's API, which the docker CLI uses when
//! `/_ping` says `Builder-Version: 1`, docker-py's `images.build` and
//! Compose) and `POST /build/prune`.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{header, HeaderValue, Uri};
use axum::response::Response;
use berth_builder::{BuildOptions, Event, PruneOptions};
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, ok_json, parse_timestamp, Query};
use crate::State;

fn json_map(q: &Query, key: &str) -> ApiResult<BTreeMap<String, Option<String>>> {
    let Some(s) = q.get(key).filter(|s| !s.is_empty()) else { return Ok(BTreeMap::new()) };
    let v: BTreeMap<String, Option<String>> =
        serde_json::from_str(s).map_err(|e| ApiError::bad_request(format!("invalid {key} parameter: {e}")))?;
    Ok(v)
}

/// The build options of a `POST /build` query (moby `newImageBuildOptions`).
fn options(q: &Query) -> ApiResult<BuildOptions> {
    let mut extra_hosts = Vec::new();
    for h in q.all("extrahosts") {
        // A JSON list (docker-py) or comma separated (older clients).
        match serde_json::from_str::<Vec<String>>(&h) {
            Ok(v) => extra_hosts.extend(v),
            Err(_) => extra_hosts.extend(h.split(',').filter(|s| !s.is_empty()).map(str::to_string)),
        }
    }
    let labels = json_map(q, "labels")?.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
    let network = q.str_or("networkmode", "default").to_string();
    if !matches!(network.as_str(), "" | "default" | "bridge" | "host" | "none") {
        return Err(ApiError::bad_request(format!("network mode \"{network}\" not supported by buildkit")));
    }
    Ok(BuildOptions {
        tags: q.all("t"),
        dockerfile: q.str_or("dockerfile", "").to_string(),
        build_args: json_map(q, "buildargs")?,
        target: q.str_or("target", "").to_string(),
        no_cache: q.bool("nocache"),
        pull: q.bool("pull"),
        labels,
        network,
        extra_hosts,
        platform: q.str_or("platform", "").to_string(),
        quiet: q.bool("q"),
    })
}

pub async fn build(AxState(st): AxState<State>, uri: Uri, body: Body) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    if q.get("remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request("building from a remote context is not supported; send the context tar"));
    }
    let opts = options(&q)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut reader = SyncIoBridge::new(StreamReader::new(stream));
    let st2 = st.clone();
    tokio::task::spawn_blocking(move || {
        let send = |v: Value| {
            let mut b = v.to_string().into_bytes();
            b.push(b'\n');
            let _ = tx.blocking_send(Ok(bytes::Bytes::from(b)));
        };
        let sink = |e: Event| match e {
            Event::Stream(s) => send(json!({"stream": s})),
            Event::Aux(id) => send(json!({"aux": {"ID": id}})),
        };
        let cancel = || tx.is_closed();
        let res = st2.builder.build(&mut reader, &opts, &sink, &cancel);
        // What the builder did not read (an early error) is drained so the
        // client gets to read the answer.
        let _ = std::io::copy(&mut std::io::Read::take(&mut reader, 1 << 30), &mut std::io::sink());
        match res {
            Ok(id) => {
                if opts.quiet {
                    send(json!({"stream": format!("{id}\n")}));
                }
                for t in &opts.tags {
                    st2.events.emit("image", "tag", &id, &[("name", t)]);
                }
            }
            Err(e) => {
                let msg = e.to_string();
                let mut detail = json!({"message": msg});
                if let Some(c) = e.code() {
                    detail["code"] = json!(c);
                }
                send(json!({"errorDetail": detail, "error": msg}));
            }
        }
    });
    let mut r = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

/// `POST /build/prune`: `all`, `keep-storage`, `filters` (`until`).
pub async fn prune(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let f = q.filters()?;
    f.validate(&["until", "unused-for", "id", "parent", "type", "description", "inuse", "shared", "private"])?;
    let mut until = None;
    for k in ["until", "unused-for"] {
        if let Some(u) = f.get(k).first() {
            let secs = match crate::util::parse_go_duration(u) {
                Some(d) => chrono::Utc::now().timestamp() as f64 - d,
                None => parse_timestamp(u)?,
            };
            until = Some(secs as i64);
        }
    }
    let keep = q.get("keep-storage").or(q.get("reserved-space")).unwrap_or("0");
    let keep_storage =
        keep.parse::<f64>().map_err(|_| ApiError::bad_request(format!("invalid keep-storage value: {keep}")))?.max(0.0)
            as u64;
    let opts = PruneOptions { all: q.bool("all"), keep_storage, until };
    let st2 = st.clone();
    let report = blocking(move || {
        st2.builder.prune(&opts, st2.usage.as_ref()).map_err(|e| ApiError::from_kind(e.kind(), e.to_string()))
    })
    .await?;
    Ok(ok_json(&json!({"CachesDeleted": report.deleted, "SpaceReclaimed": report.space_reclaimed})))
}
