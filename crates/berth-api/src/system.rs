//! System endpoints: `/_ping`, `/version`, `/info`, `/events`.

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use berth_events::Event;
use serde_json::json;
use tokio_stream::wrappers::ReceiverStream;

use crate::error::{ApiError, ApiResult};
use crate::util::{blocking, ok_json, parse_timestamp, Filters, Query};
use crate::{State, API_VERSION_STR, MIN_API_VERSION_STR};

fn ping_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    // BuildKit is not offered: "1" tells the docker CLI to use the classic
    // POST /build, which berth implements (docker-cli's processBuilder).
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache, no-store, must-revalidate"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub async fn ping() -> Response {
    let mut r = (StatusCode::OK, "OK").into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    ping_headers(&mut r);
    r
}

pub async fn ping_head() -> Response {
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    ping_headers(&mut r);
    r
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("page not found: {}", uri.path()))
}

fn kernel_version() -> String {
    nix_uname().map(|u| u.2).unwrap_or_default()
}

/// (sysname, nodename, release, machine)
fn nix_uname() -> Option<(String, String, String, String)> {
    // SAFETY: utsname is plain old data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct we own; it only fails with EFAULT.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Some((s(&u.sysname), s(&u.nodename), s(&u.release), s(&u.machine)))
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub async fn version(AxState(st): AxState<State>) -> Response {
    let kv = kernel_version();
    let v = &st.info.version;
    let build_time = option_env!("BERTH_BUILD_TIME").unwrap_or("");
    ok_json(&json!({
        "Platform": {"Name": "berth"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": API_VERSION_STR,
                "Arch": go_arch(),
                "BuildTime": build_time,
                "Experimental": "false",
                "GitCommit": st.info.git_commit,
                "GoVersion": "rust",
                "KernelVersion": kv,
                "MinAPIVersion": MIN_API_VERSION_STR,
                "Os": "linux"
            }
        }],
        "Version": v,
        "ApiVersion": API_VERSION_STR,
        "MinAPIVersion": MIN_API_VERSION_STR,
        "GitCommit": st.info.git_commit,
        "GoVersion": "rust",
        "Os": "linux",
        "Arch": go_arch(),
        "KernelVersion": kv,
        "BuildTime": build_time
    }))
}

fn os_pretty_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_else(|| "Linux".into())
}

fn os_version() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VERSION_ID=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_default()
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn ipv4_forwarding() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map(|s| s.trim() == "1").unwrap_or(false)
}

pub async fn info(AxState(st): AxState<State>) -> ApiResult<Response> {
    let images = {
        let st = st.clone();
        blocking(move || Ok(st.images.count()?)).await?
    };
    let (_, hostname, release, machine) = nix_uname().unwrap_or_default();
    let all = st.containers.list();
    let running = all.iter().filter(|c| c.state.status == berth_container::Status::Running).count();
    let paused = all.iter().filter(|c| c.state.status == berth_container::Status::Paused).count();
    let i = &st.info;
    let runtimes: serde_json::Map<String, serde_json::Value> =
        i.runtimes.iter().map(|(n, p)| (n.clone(), json!({"path": p}))).collect();
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let now = chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
    Ok(ok_json(&json!({
        "ID": i.id,
        "Containers": all.len(),
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": all.len() - running - paused,
        "Images": images,
        "Driver": i.storage_driver,
        "DriverStatus": [["Backing Filesystem", i.backing_fs], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "none"],
            "Authorization": null,
            "Log": ["json-file"]
        },
        "MemoryLimit": true,
        "SwapLimit": true,
        "KernelMemoryTCP": false,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": ipv4_forwarding(),
        "BridgeNfIptables": false,
        "BridgeNfIp6tables": false,
        "Debug": i.debug,
        "NFd": open_fds(),
        "OomKillDisable": false,
        "NGoroutines": 0,
        "SystemTime": now,
        "LoggingDriver": "json-file",
        "CgroupDriver": i.cgroup_driver,
        "CgroupVersion": i.cgroup_version,
        "NEventsListener": st.events.listeners(),
        "KernelVersion": release,
        "OperatingSystem": os_pretty_name(),
        "OSVersion": os_version(),
        "OSType": "linux",
        "Architecture": machine,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": crate::registry::registry_config_json(st.registry.config()),
        "NCPU": ncpu,
        "MemTotal": mem_total(),
        "GenericResources": null,
        "DockerRootDir": i.data_root,
        "HttpProxy": std::env::var("HTTP_PROXY").unwrap_or_default(),
        "HttpsProxy": std::env::var("HTTPS_PROXY").unwrap_or_default(),
        "NoProxy": std::env::var("NO_PROXY").unwrap_or_default(),
        "Name": hostname,
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": i.version,
        "Runtimes": runtimes,
        "DefaultRuntime": i.default_runtime,
        "Swarm": {
            "NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
            "ControlAvailable": false, "Error": "", "RemoteManagers": null
        },
        "LiveRestoreEnabled": true,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "CDISpecDirs": [],
        "Warnings": null
    })))
}

const EVENT_FILTERS: &[&str] = &[
    "type",
    "event",
    "container",
    "image",
    "label",
    "network",
    "volume",
    "daemon",
    "scope",
    "plugin",
    "node",
    "service",
    "secret",
    "config",
];

fn event_matches(f: &Filters, e: &Event) -> bool {
    let any = |k: &str, pred: &dyn Fn(&str) -> bool| -> bool {
        let v = f.get(k);
        v.is_empty() || v.iter().any(|x| pred(x))
    };
    let name = e.actor.attributes.get("name").map(String::as_str).unwrap_or("");
    any("type", &|t| t == e.kind)
        && any("event", &|a| a == e.action || e.action.starts_with(&format!("{a}:")))
        && any("scope", &|s| s == e.scope)
        && (f.get("container").is_empty()
            || (e.kind == "container" && any("container", &|c| e.actor.id.starts_with(c) || c == name)))
        && (f.get("image").is_empty()
            || any("image", &|i| {
                e.actor.attributes.get("image").map(String::as_str) == Some(i)
                    || (e.kind == "image" && (e.actor.id.contains(i) || name == i))
            }))
        && (f.get("network").is_empty()
            || (e.kind == "network" && any("network", &|n| e.actor.id.starts_with(n) || n == name)))
        && (f.get("volume").is_empty() || (e.kind == "volume" && any("volume", &|v| v == e.actor.id)))
        && f.get("label").iter().all(|l| match l.split_once('=') {
            Some((k, v)) => e.actor.attributes.get(k).map(String::as_str) == Some(v),
            None => e.actor.attributes.contains_key(l.as_str()),
        })
}

pub async fn events(AxState(st): AxState<State>, uri: Uri) -> ApiResult<Response> {
    let q = Query::parse(uri.query())?;
    let filters = q.filters()?;
    filters.validate(EVENT_FILTERS)?;
    let since = q.get("since").filter(|s| !s.is_empty()).map(parse_timestamp).transpose()?;
    let until = q.get("until").filter(|s| !s.is_empty()).map(parse_timestamp).transpose()?;
    let (past, mut rx) = st.events.subscribe();
    let (tx, out) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    let in_window = move |e: &Event| {
        let t = e.time_nano as f64 / 1e9;
        since.is_none_or(|s| t >= s) && until.is_none_or(|u| t <= u)
    };
    tokio::spawn(async move {
        let send = |e: &Event| {
            let mut line = serde_json::to_vec(e).unwrap_or_default();
            line.push(b'\n');
            bytes::Bytes::from(line)
        };
        if since.is_some() {
            for e in past.iter().filter(|e| in_window(e) && event_matches(&filters, e)) {
                if tx.send(Ok(send(e))).await.is_err() {
                    return;
                }
            }
        }
        let deadline = until.map(|u| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            tokio::time::Instant::now() + std::time::Duration::from_secs_f64((u - now).max(0.0))
        });
        loop {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(r) => r,
                    Err(_) => return,
                },
                None => tokio::select! {
                    r = rx.recv() => r,
                    _ = tx.closed() => return,
                },
            };
            match next {
                Ok(e) => {
                    if in_window(&e) && event_matches(&filters, &e) && tx.send(Ok(send(&e))).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    });
    let mut r = Response::new(Body::from_stream(ReceiverStream::new(out)));
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(r)
}
