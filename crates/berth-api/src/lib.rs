//! berth's Docker Engine API server: an axum router on a unix socket.
//!
//! Every path is served both unversioned and under `/v1.24/` … `/v1.47/`;
//! the version a client asked for is available to handlers as [`ApiVersion`]
//! (newer versions are treated as the newest we speak, DESIGN.md §1).
#![recursion_limit = "512"]

mod archive;
mod build;
mod container_net;
mod containers;
pub mod df;
pub mod error;
mod images;
mod networks;
mod registry;
mod system;
pub mod util;
mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response};
use axum::routing::{get, post};
use axum::Router;
use berth_events::EventBus;
use berth_image::store::ImageUsage;
use berth_image::ImageStore;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;
use tower::ServiceExt;

pub use error::{ApiError, ApiResult};

pub const API_VERSION: (u32, u32) = (1, 47);
pub const MIN_API_VERSION: (u32, u32) = (1, 24);
pub const API_VERSION_STR: &str = "1.47";
pub const MIN_API_VERSION_STR: &str = "1.24";

/// The API version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl ApiVersion {
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        (self.0, self.1) >= (major, minor)
    }
    pub fn below(self, major: u32, minor: u32) -> bool {
        !self.at_least(major, minor)
    }
}

/// Static facts about the daemon, reported by `/info` and `/version`.
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    pub id: String,
    pub data_root: PathBuf,
    pub version: String,
    pub git_commit: String,
    pub cgroup_version: String,
    pub cgroup_driver: String,
    pub storage_driver: String,
    pub backing_fs: String,
    pub default_runtime: String,
    pub runtimes: Vec<(String, String)>,
    pub debug: bool,
}

/// What the handlers work with.
pub struct Engine {
    pub images: Arc<ImageStore>,
    pub containers: Arc<berth_container::Manager>,
    pub events: Arc<EventBus>,
    pub usage: Arc<dyn ImageUsage>,
    pub registry: Arc<berth_registry::Registry>,
    pub builder: Arc<berth_builder::Builder>,
    pub info: DaemonInfo,
    pub networks: Arc<berth_network::Networks>,
}

pub type State = Arc<Engine>;

/// The whole Engine API.
pub fn router(engine: State) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/update", post(containers::update))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/exec", post(containers::exec_create))
        .route("/containers/{id}", axum::routing::delete(containers::remove))
        .route("/containers/{id}/archive", get(archive::get).head(archive::head).put(archive::put))
        .route("/containers/{id}/changes", get(archive::changes))
        .route("/containers/{id}/export", get(archive::export))
        .route("/commit", post(archive::commit))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route("/volumes/{name}", get(volumes::inspect).delete(volumes::remove))
        .route("/system/df", get(df::df))
        .route("/exec/{id}/start", post(containers::exec_start))
        .route("/exec/{id}/resize", post(containers::exec_resize))
        .route("/exec/{id}/json", get(containers::exec_inspect))
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route("/networks/{id}", get(networks::inspect).delete(networks::remove))
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .route("/build", post(build::build))
        .route("/build/prune", post(build::prune))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route("/images/prune", post(images::prune))
        .route("/images/search", get(registry::search))
        .route("/auth", post(registry::auth))
        .route("/distribution/{*rest}", get(registry::distribution))
        .route("/images/{*rest}", get(images::get_dispatch).post(images::post_dispatch).delete(images::delete))
        .fallback(system::not_found)
        .with_state(engine)
}

/// Strips `/vX.Y` from the path and records the version; refuses versions
/// older than the minimum with Docker's message.
fn rewrite(mut req: Request<Body>) -> Result<Request<Body>, ApiError> {
    let path = req.uri().path();
    let mut version = ApiVersion(API_VERSION.0, API_VERSION.1);
    if let Some(rest) = path.strip_prefix("/v") {
        let (ver, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if let Some((a, b)) = ver.split_once('.') {
            if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                if (a, b) < MIN_API_VERSION {
                    return Err(ApiError::bad_request(format!(
                        "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION_STR}, please upgrade your client to a newer version"
                    )));
                }
                version = if (a, b) > API_VERSION { version } else { ApiVersion(a, b) };
                let new = match req.uri().query() {
                    Some(q) => format!("{tail}?{q}"),
                    None => tail.to_string(),
                };
                if let Ok(uri) = new.parse() {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
    req.extensions_mut().insert(version);
    Ok(req)
}

fn decorate(mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION_STR));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    if let Ok(v) = HeaderValue::from_str(&format!("berth/{} (linux)", env!("CARGO_PKG_VERSION"))) {
        h.insert("Server", v);
    }
    resp
}

/// Serves `router` on `listener` until `shutdown` resolves. Connections are
/// served with upgrades enabled (attach and exec hijack the connection).
pub async fn serve(
    listener: UnixListener,
    app: Router,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use axum::response::IntoResponse;
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    // Out of fds and the like: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return Ok(()),
        };
        let app = app.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    let req = req.map(Body::new);
                    let resp = match rewrite(req) {
                        Ok(req) => match app.oneshot(req).await {
                            Ok(r) => r,
                            Err(never) => match never {},
                        },
                        Err(e) => e.into_response(),
                    };
                    Ok::<_, std::convert::Infallible>(decorate(resp))
                }
            });
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
}
