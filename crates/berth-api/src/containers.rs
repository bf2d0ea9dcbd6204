//! Container endpoints: create, list, inspect, start/stop/kill/restart,
//! wait, attach (hijacked), logs, top, rename, update, pause, remove, prune,
//! and exec.

use axum::body::Body;
use axum::extract::{Path, Request, State as AxState};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use berth_container::logs::LogOptions;
use berth_container::{AttachOptions, Container, ExecConfig, Status, WaitCondition};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};

use crate::container_net::{list_ports, network_settings, networks_json, on_network, port_filter};
use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, glob_match, json as json_resp, ok_json, parse_timestamp, Query};
use crate::{ApiVersion, State};

impl From<berth_container::Error> for ApiError {
    fn from(e: berth_container::Error) -> Self {
        Self::from_kind(e.kind(), e.to_string())
    }
}

async fn read_json_body(body: Body) -> ApiResult<Value> {
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
    if bytes.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

pub async fn create(AxState(st): AxState<State>, uri: Uri, body: Body) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let v = read_json_body(body).await?;
    let name = q.get("name").filter(|n| !n.is_empty());
    let r = st.containers.create(name, &v).await?;
    Ok(json_resp(StatusCode::CREATED, &json!({"Id": r.id, "Warnings": r.warnings})))
}

fn command_line(c: &Container) -> String {
    let mut parts = vec![c.path.clone()];
    parts.extend(c.args.iter().cloned());
    parts.join(" ")
}

pub(crate) fn summary(c: &Container, size: Option<(u64, u64)>) -> Value {
    let created = chrono::DateTime::parse_from_rfc3339(&c.created).map(|t| t.timestamp()).unwrap_or(0);
    let mut o = json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image_name(),
        "ImageID": c.image,
        "Command": command_line(c),
        "Created": created,
        "Ports": list_ports(c),
        "Labels": c.labels(),
        "State": c.state.status.as_str(),
        "Status": c.status_text(chrono::Utc::now()),
        "HostConfig": {"NetworkMode": c.network_mode()},
        "NetworkSettings": {"Networks": networks_json(c)},
        "Mounts": mounts_json(c),
    });
    if let Some((rw, root)) = size {
        o["SizeRw"] = json!(rw);
        o["SizeRootFs"] = json!(root);
    }
    o
}

/// Inspect's and `ps`'s `Mounts`: every mount point but `--tmpfs` ones
/// (Docker lists `--mount type=tmpfs` only).
fn mounts_json(c: &Container) -> Value {
    Value::Array(c.mount_points.iter().filter(|m| !m.from_tmpfs_field).map(|m| m.api()).collect())
}

const PS_FILTERS: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];

pub async fn list(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let f = q.filters()?;
    f.validate(PS_FILTERS)?;
    for s in f.get("status") {
        if Status::parse(s).is_none() {
            return Err(ApiError::bad_request(format!("invalid filter 'status={s}'")));
        }
    }
    let all = q.bool("all");
    let limit: Option<usize> =
        q.get("limit").and_then(|l| l.parse::<i64>().ok()).filter(|l| *l > 0).map(|l| l as usize);
    let size = q.bool("size");
    let mut cs = st.containers.list();
    cs.sort_by(|a, b| b.created.cmp(&a.created));
    let created_of = |name: &str| -> ApiResult<String> { Ok(st.containers.resolve(name)?.created) };
    let before = f.get("before").first().map(|n| created_of(n)).transpose()?;
    let since = f.get("since").first().map(|n| created_of(n)).transpose()?;
    let images = st.images.clone();
    let ancestors: Vec<String> = {
        let anc = f.get("ancestor").to_vec();
        blocking(move || Ok(anc.iter().filter_map(|a| images.resolve(a).ok()).collect())).await?
    };
    let mut out = Vec::new();
    for c in &cs {
        // Without -a only running containers, unless a status filter says otherwise.
        if !all && !f.has("status") && limit.is_none() && !c.state.is_running() {
            continue;
        }
        if f.has("status") && !f.get("status").iter().any(|s| s == c.state.status.as_str()) {
            continue;
        }
        if f.has("id") && !f.get("id").iter().any(|p| c.id.starts_with(p.as_str())) {
            continue;
        }
        if f.has("name")
            && !f.get("name").iter().any(|n| {
                let n = n.trim_start_matches('/');
                c.name.contains(n) || glob_match(n, &c.name)
            })
        {
            continue;
        }
        if !f.labels_match("label", &c.labels()) {
            continue;
        }
        if f.has("exited")
            && !(c.state.status == Status::Exited
                && f.get("exited").iter().any(|e| e.parse::<i32>().ok() == Some(c.state.exit_code)))
        {
            continue;
        }
        if f.has("ancestor") && !(ancestors.contains(&c.image) || f.get("ancestor").iter().any(|a| a == c.image_name()))
        {
            continue;
        }
        if before.as_ref().is_some_and(|b| c.created >= *b) || since.as_ref().is_some_and(|s| c.created <= *s) {
            continue;
        }
        if f.has("network") && !f.get("network").iter().any(|n| on_network(c, n)) {
            continue;
        }
        if f.has("publish") && !f.get("publish").iter().any(|p| port_filter(c, p, true)) {
            continue;
        }
        if f.has("expose") && !f.get("expose").iter().any(|p| port_filter(c, p, false)) {
            continue;
        }
        // `volume=` matches a volume name or a mount destination (moby's
        // `includeContainerInList`).
        if f.has("volume")
            && !f
                .get("volume")
                .iter()
                .any(|v| c.mount_points.iter().any(|m| (m.kind == "volume" && m.name == *v) || m.destination == *v))
        {
            continue;
        }
        out.push(c.clone());
    }
    if let Some(l) = limit {
        out.truncate(l);
    }
    let mgr = st.containers.clone();
    let rows = blocking(move || Ok(out.iter().map(|c| summary(c, size.then(|| mgr.sizes(c)))).collect::<Vec<Value>>()))
        .await?;
    Ok(ok_json(&rows))
}

pub async fn inspect(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let c = st.containers.resolve(&id)?;
    let dir = st.containers.container_root(&c.id);
    let p = |f: &str| dir.join(f).display().to_string();
    let execs: Vec<String> = Vec::new();
    let mut o = json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": c.state.status.as_str(),
            "Running": c.state.status == Status::Running || c.state.status == Status::Paused,
            "Paused": c.state.status == Status::Paused,
            "Restarting": c.state.status == Status::Restarting,
            "OOMKilled": c.state.oom_killed,
            "Dead": c.state.status == Status::Dead,
            "Pid": c.state.pid,
            "ExitCode": c.state.exit_code,
            "Error": c.state.error,
            "StartedAt": c.state.started_at,
            "FinishedAt": c.state.finished_at,
        },
        "Image": c.image,
        "ResolvConfPath": p("resolv.conf"),
        "HostnamePath": p("hostname"),
        "HostsPath": p("hosts"),
        "LogPath": st.containers.log_path(&c.id).display().to_string(),
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if execs.is_empty() { Value::Null } else { json!(execs) },
        "HostConfig": c.host_config,
        "GraphDriver": {"Data": {"MergedDir": p("rootfs")}, "Name": "overlay2"},
        "Mounts": mounts_json(&c),
        "Config": c.config,
        "NetworkSettings": network_settings(&c),
    });
    if q.bool("size") {
        let mgr = st.containers.clone();
        let c2 = c.clone();
        let (rw, root) = blocking(move || Ok(mgr.sizes(&c2))).await?;
        o["SizeRw"] = json!(rw);
        o["SizeRootFs"] = json!(root);
    }
    Ok(ok_json(&o))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub async fn start(AxState(st): AxState<State>, Path(id): Path<String>) -> ApiResult<Response> {
    st.containers.start(&id).await?;
    Ok(no_content())
}

fn timeout_param(q: &Query) -> ApiResult<Option<i64>> {
    match q.get("t").or(q.get("timeout")) {
        None | Some("") => Ok(None),
        Some(t) => t.parse::<i64>().map(Some).map_err(|_| ApiError::bad_request(format!("invalid value for t: {t}"))),
    }
}

pub async fn stop(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    st.containers.stop(&id, q.get("signal"), timeout_param(&q)?).await?;
    Ok(no_content())
}

pub async fn restart(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    st.containers.restart(&id, q.get("signal"), timeout_param(&q)?).await?;
    Ok(no_content())
}

pub async fn kill(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    st.containers.kill(&id, q.get("signal")).await?;
    Ok(no_content())
}

pub async fn pause(AxState(st): AxState<State>, Path(id): Path<String>) -> ApiResult<Response> {
    st.containers.pause(&id).await?;
    Ok(no_content())
}

pub async fn unpause(AxState(st): AxState<State>, Path(id): Path<String>) -> ApiResult<Response> {
    st.containers.unpause(&id).await?;
    Ok(no_content())
}

pub async fn rename(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let name = q.get("name").unwrap_or("");
    st.containers.rename(&id, name).await?;
    Ok(no_content())
}

pub async fn update(AxState(st): AxState<State>, Path(id): Path<String>, body: Body) -> ApiResult<Response> {
    let v = read_json_body(body).await?;
    let warnings = st.containers.update(&id, &v).await?;
    Ok(ok_json(&json!({"Warnings": warnings})))
}

pub async fn remove(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    st.containers.remove_with_volumes(&id, q.bool("force"), q.bool("v")).await?;
    Ok(no_content())
}

pub async fn resize(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let (h, w) = hw(&q)?;
    st.containers.resize(&id, None, w, h).await?;
    Ok(StatusCode::OK.into_response())
}

fn hw(q: &Query) -> ApiResult<(u16, u16)> {
    let p = |k: &str| -> ApiResult<u16> {
        q.get(k).unwrap_or("0").parse::<u16>().map_err(|_| ApiError::bad_request(format!("invalid {k}")))
    };
    Ok((p("h")?, p("w")?))
}

/// `POST /containers/{id}/wait`: headers go out at once; the body is written
/// when the condition holds (the docker CLI sends this before start).
pub async fn wait(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let cond = match q.get("condition").unwrap_or("not-running") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => return Err(ApiError::bad_request(format!("invalid condition: \"{other}\""))),
    };
    // Resolve first: an unknown container is a 404, not a broken stream.
    let c = st.containers.resolve(&id)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(1);
    let mgr = st.containers.clone();
    tokio::spawn(async move {
        let body = match mgr.wait(&c.id, cond).await {
            Ok((code, err)) => {
                let e = if err.is_empty() { Value::Null } else { json!({"Message": err}) };
                json!({"Error": e, "StatusCode": code})
            }
            Err(e) => json!({"Error": {"Message": e.to_string()}, "StatusCode": -1}),
        };
        let mut b = body.to_string().into_bytes();
        b.push(b'\n');
        let _ = tx.send(Ok(bytes::Bytes::from(b))).await;
    });
    let mut r = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}

fn stream_content_type(tty: bool, v: ApiVersion) -> HeaderValue {
    if !tty && v.at_least(1, 42) {
        HeaderValue::from_static("application/vnd.docker.multiplexed-stream")
    } else {
        HeaderValue::from_static("application/vnd.docker.raw-stream")
    }
}

/// Answers 101 and hands the upgraded connection to `f`.
fn hijack<F, Fut>(mut req: Request, content_type: HeaderValue, f: F) -> ApiResult<Response>
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let wants_upgrade =
        req.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !wants_upgrade {
        return Err(ApiError::bad_request(
            "this endpoint hijacks the connection: send \"Connection: Upgrade\" and \"Upgrade: tcp\"",
        ));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => f(TokioIo::new(up)).await,
            Err(e) => tracing::debug!("upgrade failed: {e}"),
        }
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, content_type);
    Ok(r)
}

pub async fn attach(
    AxState(st): AxState<State>,
    Extension(v): Extension<ApiVersion>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let q = Query::parse(req.uri().query())?;
    let c = st.containers.resolve(&id)?;
    if matches!(c.state.status, Status::Removing | Status::Dead) {
        return Err(ApiError::new(StatusCode::CONFLICT, "You cannot attach to a stopped container, start it first"));
    }
    let opts = AttachOptions { stdin: q.bool("stdin"), stdout: q.bool("stdout"), stderr: q.bool("stderr") };
    let mgr = st.containers.clone();
    let cid = c.id.clone();
    hijack(req, stream_content_type(c.tty(), v), move |io| async move {
        if let Err(e) = mgr.attach(&cid, opts, Box::new(io)).await {
            tracing::debug!("attach {}: {e}", &cid[..12]);
        }
    })
}

pub async fn logs(
    AxState(st): AxState<State>,
    Extension(v): Extension<ApiVersion>,
    Path(id): Path<String>,
    uri: Uri,
) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let stdout = q.bool("stdout");
    let stderr = q.bool("stderr");
    if !stdout && !stderr {
        return Err(ApiError::bad_request("Bad parameters: you must choose at least one stream"));
    }
    let tail = match q.get("tail") {
        None | Some("") | Some("all") => None,
        Some(t) => {
            Some(t.parse::<i64>().map_err(|_| ApiError::bad_request(format!("invalid tail: {t}")))?.max(0) as usize)
        }
    };
    let ts = |k: &str| -> ApiResult<Option<f64>> {
        match q.get(k) {
            None | Some("") | Some("0") => Ok(None),
            Some(s) => parse_timestamp(s).map(Some),
        }
    };
    let opts = LogOptions {
        stdout,
        stderr,
        since: ts("since")?,
        until: ts("until")?,
        tail,
        timestamps: q.bool("timestamps"),
        follow: q.bool("follow"),
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let tty = st.containers.logs(&id, opts, tx).await?;
    let (btx, brx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    tokio::spawn(async move {
        while let Some(chunk) = rx.recv().await {
            if btx.send(Ok(bytes::Bytes::from(chunk))).await.is_err() {
                return;
            }
        }
    });
    let mut r = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(brx)));
    r.headers_mut().insert(header::CONTENT_TYPE, stream_content_type(tty, v));
    Ok(r)
}

pub async fn top(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let (titles, procs) = st.containers.top(&id, q.get("ps_args").unwrap_or("")).await?;
    Ok(ok_json(&json!({"Titles": titles, "Processes": procs})))
}

pub async fn prune(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let f = q.filters()?;
    f.validate(&["until", "label", "label!"])?;
    let until = f.get("until").first().map(|s| parse_timestamp(s)).transpose()?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for c in st.containers.list() {
        if c.state.is_running() || c.state.status == Status::Removing {
            continue;
        }
        if !f.labels_match("label", &c.labels()) {
            continue;
        }
        let created = chrono::DateTime::parse_from_rfc3339(&c.created).map(|t| t.timestamp() as f64).unwrap_or(0.0);
        if until.is_some_and(|u| created >= u) {
            continue;
        }
        let mgr = st.containers.clone();
        let c2 = c.clone();
        let (rw, _) = blocking(move || Ok(mgr.sizes(&c2))).await?;
        if st.containers.remove(&c.id, false).await.is_ok() {
            deleted.push(c.id.clone());
            reclaimed += rw;
        }
    }
    st.events.emit("container", "prune", "", &[("reclaimed", &reclaimed.to_string())]);
    let d = if deleted.is_empty() { Value::Null } else { json!(deleted) };
    Ok(ok_json(&json!({"ContainersDeleted": d, "SpaceReclaimed": reclaimed})))
}

fn strs(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(String::from).collect(),
        _ => Vec::new(),
    }
}

fn field<'a>(o: &'a Map<String, Value>, k: &str) -> Option<&'a Value> {
    o.iter().find(|(x, _)| x.eq_ignore_ascii_case(k)).map(|(_, v)| v)
}

pub async fn exec_create(AxState(st): AxState<State>, Path(id): Path<String>, body: Body) -> ApiResult<Response> {
    let v = read_json_body(body).await?;
    let o = v.as_object().cloned().unwrap_or_default();
    let b = |k: &str| field(&o, k).and_then(Value::as_bool).unwrap_or(false);
    let s = |k: &str| field(&o, k).and_then(Value::as_str).unwrap_or("").to_string();
    let cfg = ExecConfig {
        cmd: strs(field(&o, "Cmd")),
        env: strs(field(&o, "Env")),
        user: s("User"),
        working_dir: s("WorkingDir"),
        tty: b("Tty"),
        attach_stdin: b("AttachStdin"),
        attach_stdout: b("AttachStdout"),
        attach_stderr: b("AttachStderr"),
        privileged: b("Privileged"),
        detach_keys: s("DetachKeys"),
    };
    let id = st.containers.exec_create(&id, cfg)?;
    Ok(json_resp(StatusCode::CREATED, &json!({"Id": id})))
}

pub async fn exec_start(
    AxState(st): AxState<State>,
    Extension(v): Extension<ApiVersion>,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.map_err(|e| ApiError::bad_request(e.to_string()))?;
    let o: Value = if bytes.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    let detach = o.get("Detach").and_then(Value::as_bool).unwrap_or(false);
    let tty = o.get("Tty").and_then(Value::as_bool);
    let info = st.containers.exec_inspect(&id)?;
    if detach {
        st.containers.exec_start(&id, tty, None).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let req = Request::from_parts(parts, Body::empty());
    let mgr = st.containers.clone();
    let eid = id.clone();
    let is_tty = tty.unwrap_or(info.config.tty);
    hijack(req, stream_content_type(is_tty, v), move |io| async move {
        if let Err(e) = mgr.exec_start(&eid, tty, Some(Box::new(io))).await {
            tracing::debug!("exec {}: {e}", &eid[..12]);
        }
    })
}

pub async fn exec_resize(AxState(st): AxState<State>, Path(id): Path<String>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let (h, w) = hw(&q)?;
    let info = st.containers.exec_inspect(&id)?;
    st.containers.resize(&info.container_id, Some(&id), w, h).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn exec_inspect(AxState(st): AxState<State>, Path(id): Path<String>) -> ApiResult<Response> {
    let e = st.containers.exec_inspect(&id)?;
    let (ep, args) = match e.config.cmd.split_first() {
        Some((a, b)) => (a.clone(), b.to_vec()),
        None => (String::new(), Vec::new()),
    };
    Ok(ok_json(&json!({
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.config.detach_keys,
        "ExitCode": e.exit_code,
        "ID": e.id,
        "OpenStderr": e.config.attach_stderr,
        "OpenStdin": e.config.attach_stdin,
        "OpenStdout": e.config.attach_stdout,
        "ProcessConfig": {
            "arguments": args, "entrypoint": ep, "privileged": e.config.privileged,
            "tty": e.config.tty, "user": e.config.user
        },
        "Running": e.running,
        "Pid": e.pid,
    })))
}
