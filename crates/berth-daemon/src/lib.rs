//! `berth daemon`: opens the stores under the data root, takes the data-root
//! lock, and serves the Engine API on a unix socket until SIGTERM/SIGINT.

mod host;
mod registry;

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_api::{DaemonInfo, Engine};
use berth_content::ContentStore;
use berth_events::EventBus;
use berth_image::store::ImageUsage;
use berth_image::ImageStore;
use berth_meta::Db;
use berth_snapshot::Snapshotter;
use clap::Parser;

pub use host::{cgroup_version, DEFAULT_DATA_ROOT, DEFAULT_HOST};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("another berth daemon is already running with data root {root} (lock {lock} is held{pid})")]
    Locked { root: String, lock: String, pid: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Meta(#[from] berth_meta::Error),
    #[error(transparent)]
    Content(#[from] berth_content::Error),
    #[error(transparent)]
    Snapshot(#[from] berth_snapshot::Error),
    #[error(transparent)]
    Container(#[from] berth_container::Error),
    #[error(transparent)]
    Network(#[from] berth_network::Error),
    #[error(transparent)]
    Builder(#[from] berth_builder::Error),
}

/// Containers tell the image store which images are in use.
struct ContainerUsage(Arc<berth_container::Manager>);

impl ImageUsage for ContainerUsage {
    fn containers_using(&self, image_id: &str) -> Vec<String> {
        self.0.containers_using_image(image_id).into_iter().map(|(id, _)| id).collect()
    }
    fn running_container_using(&self, image_id: &str) -> Option<String> {
        self.0.containers_using_image(image_id).into_iter().find(|(_, r)| *r).map(|(id, _)| id)
    }
}

/// The shim's log rotation defaults (Docker's json-file has none; berth bounds logs).
mod berth_shim_defaults {
    pub const LOG_MAX_SIZE: u64 = 10 << 20;
    pub const LOG_MAX_FILES: u32 = 3;
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Flags of `berth daemon` (named as dockerd's).
#[derive(Debug, Clone, Parser)]
#[command(name = "berth daemon", about = "Run the berth engine (Docker Engine API server)")]
pub struct Options {
    /// Root directory of persistent state
    #[arg(long = "data-root", default_value = DEFAULT_DATA_ROOT)]
    pub data_root: PathBuf,
    /// Socket to listen on (unix:///path)
    #[arg(short = 'H', long = "host", default_value = DEFAULT_HOST)]
    pub host: String,
    /// Log level: debug, info, warn, error
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Enable debug mode
    #[arg(short = 'D', long = "debug")]
    pub debug: bool,
    /// Root of runtime state: shim sockets, runtime state (default /run/berth
    /// for the default data root, <data-root>/exec otherwise)
    #[arg(long = "exec-root")]
    pub exec_root: Option<PathBuf>,
    /// Runtime for containers that do not name one (berth, or runc/crun/youki when installed)
    #[arg(long = "default-runtime", default_value = "berth")]
    pub default_runtime: String,
    /// Group for the unix socket (defaults to "docker" when that group exists)
    #[arg(short = 'G', long = "group")]
    pub group: Option<String>,
    /// Enable insecure registry communication (host[:port] or CIDR; 127.0.0.0/8 always is)
    #[arg(long = "insecure-registry")]
    pub insecure_registries: Vec<String>,
    /// Preferred registry mirror for docker.io
    #[arg(long = "registry-mirror")]
    pub registry_mirrors: Vec<String>,
    /// Set the max concurrent downloads
    #[arg(long = "max-concurrent-downloads", default_value_t = 3)]
    pub max_concurrent_downloads: usize,
    /// Set the max concurrent uploads
    #[arg(long = "max-concurrent-uploads", default_value_t = 5)]
    pub max_concurrent_uploads: usize,
    /// Host bridge of the default "bridge" network
    #[arg(short = 'b', long = "bridge", default_value = "berth0")]
    pub bridge: String,
    /// Address and prefix of the default bridge (e.g. 172.17.0.1/16; default: the first free default pool)
    #[arg(long = "bip")]
    pub bip: Option<String>,
    /// Pool for networks created without a subnet: base=CIDR,size=PREFIX (repeatable)
    #[arg(long = "default-address-pool")]
    pub default_address_pool: Vec<String>,
}

/// `--default-address-pool base=10.10.0.0/16,size=24` (dockerd's syntax).
fn parse_pool(s: &str) -> Result<(berth_network::ipam::Subnet, u8), Error> {
    let mut base = None;
    let mut size = None;
    for kv in s.split(',') {
        match kv.split_once('=') {
            Some(("base", v)) => {
                base = Some(berth_network::ipam::Subnet::parse(v).map_err(|e| Error::Config(e.to_string()))?)
            }
            Some(("size", v)) => size = v.parse::<u8>().ok(),
            _ => return Err(Error::Config(format!("invalid default address pool {s:?}: want base=CIDR,size=N"))),
        }
    }
    match (base, size) {
        (Some(b), Some(n)) if n >= b.prefix && n <= 30 => Ok((b, n)),
        _ => Err(Error::Config(format!("invalid default address pool {s:?}: want base=CIDR,size=N"))),
    }
}

/// Entry point: parses `args` (without the leading `berth daemon`) and runs.
pub fn main(args: Vec<String>) -> i32 {
    let opts = match Options::try_parse_from(std::iter::once("berth daemon".to_string()).chain(args)) {
        Ok(o) => o,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 125 } else { 0 };
        }
    };
    let level = if opts.debug { "debug".to_string() } else { opts.log_level.clone() };
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{level},hyper=warn"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("berthd").build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: cannot start runtime: {e}");
            return 1;
        }
    };
    let code = match rt.block_on(run(opts)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("berth daemon: {e}");
            1
        }
    };
    // Blocking tasks still waiting on shims (container monitors) must not
    // hold the exit: the containers keep running and a restarted daemon
    // re-attaches to them.
    rt.shutdown_background();
    code
}

/// The unix socket path of a `-H` value.
pub fn socket_path(host: &str) -> Result<PathBuf, Error> {
    match host.strip_prefix("unix://") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ if host.starts_with('/') => Ok(PathBuf::from(host)),
        _ => Err(Error::Config(format!("unsupported host {host:?}: only unix:///path sockets are supported"))),
    }
}

/// Holds the data-root lock for the daemon's lifetime.
struct Lock {
    _file: fs::File,
}

fn lock_data_root(root: &Path) -> Result<Lock, Error> {
    use std::os::fd::AsRawFd;
    let path = root.join("berth.lock");
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(format!("opening {}", path.display())))?;
    // SAFETY: flock on an fd we own.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let pid = fs::read_to_string(&path).map(|s| format!(" by pid {}", s.trim())).unwrap_or_default();
        return Err(Error::Locked { root: root.display().to_string(), lock: path.display().to_string(), pid });
    }
    f.set_len(0).map_err(io("truncating lock"))?;
    let _ = write!(f, "{}", std::process::id());
    Ok(Lock { _file: f })
}

fn engine_id(root: &Path) -> String {
    let p = root.join("engine-id");
    if let Ok(s) = fs::read_to_string(&p) {
        if !s.trim().is_empty() {
            return s.trim().to_string();
        }
    }
    let mut buf = [0u8; 16];
    if let Ok(mut f) = fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
    let id = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);
    let _ = fs::write(&p, &id);
    id
}

/// Binds the API socket, refusing to steal one another daemon is serving.
fn bind_socket(path: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener, Error> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(Error::Config(format!("another daemon is already listening on {}", path.display())));
        }
        fs::remove_file(path).map_err(io(format!("removing stale socket {}", path.display())))?;
    }
    let l = tokio::net::UnixListener::bind(path).map_err(io(format!("listening on {}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660)).map_err(io("chmod socket"))?;
    let group = group.map(String::from).or_else(|| host::group_exists("docker").then(|| "docker".to_string()));
    if let Some(g) = group {
        match host::group_id(&g) {
            Some(gid) => {
                let _ = nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)));
            }
            None => tracing::warn!("group {g} not found; socket stays root-only"),
        }
    }
    Ok(l)
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(opts: Options) -> Result<(), Error> {
    // Every option is checked before anything on the host is touched: a
    // daemon refusing its configuration leaves no bridge, rule or mount.
    let pools = opts.default_address_pool.iter().map(|p| parse_pool(p)).collect::<Result<Vec<_>, _>>()?;
    let registry = Arc::new(registry::client(&opts)?);
    let root = opts.data_root.clone();
    fs::create_dir_all(&root).map_err(io(format!("creating data root {}", root.display())))?;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o710)).map_err(io("chmod data root"))?;
    let _lock = lock_data_root(&root)?;
    let sock = socket_path(&opts.host)?;
    host::check_overlay();

    let db = Arc::new(Db::open(&root.join("berth.db"))?);
    let content = Arc::new(ContentStore::open(&root.join("content"))?);
    let snapshots = Arc::new(Snapshotter::new(&root.join("snapshots"))?);
    let images = Arc::new(ImageStore::new(db.clone(), content, snapshots)?);
    match images.gc(&Default::default()) {
        Ok(0) => {}
        Ok(n) => tracing::info!("removed {n} unreferenced blobs/layers left by an earlier crash"),
        Err(e) => tracing::warn!("garbage collection: {e}"),
    }

    let mut runtimes = vec![("berth".to_string(), host::sibling_binary("berth-runtime"))];
    for other in ["runc", "crun", "youki"] {
        if let Some(p) = host::which(other) {
            runtimes.push((other.to_string(), p));
        }
    }
    if !runtimes.iter().any(|(n, _)| *n == opts.default_runtime) {
        return Err(Error::Config(format!("default runtime {:?} is not installed", opts.default_runtime)));
    }
    let info = DaemonInfo {
        id: engine_id(&root),
        data_root: root.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        git_commit: option_env!("BERTH_GIT_COMMIT").unwrap_or("").to_string(),
        cgroup_version: cgroup_version().to_string(),
        cgroup_driver: "cgroupfs".into(),
        storage_driver: "overlay2".into(),
        backing_fs: host::backing_fs(&root),
        default_runtime: opts.default_runtime.clone(),
        runtimes,
        debug: opts.debug,
    };
    let events = Arc::new(EventBus::new());
    let exec_root = exec_root_of(&root, &opts);
    let mut runtime_paths: HashMap<String, PathBuf> = HashMap::new();
    for (name, path) in &info.runtimes {
        runtime_paths.insert(name.clone(), PathBuf::from(path));
    }
    let containers = berth_container::Manager::new(
        berth_container::ManagerConfig {
            data_root: root.clone(),
            exec_root,
            shim_bin: PathBuf::from(host::sibling_binary("berth-shim")),
            runtimes: runtime_paths,
            default_runtime: opts.default_runtime.clone(),
            cgroup_parent: "/berth".into(),
            log_max_size: berth_shim_defaults::LOG_MAX_SIZE,
            log_max_files: berth_shim_defaults::LOG_MAX_FILES,
        },
        db.clone(),
        images.clone(),
        events.clone(),
    )?;
    let net_cfg = berth_network::NetworkConfig {
        exec_root: exec_root_of(&root, &opts),
        bridge: opts.bridge.clone(),
        bip: opts.bip.clone(),
        pools,
    };
    let networks = tokio::task::spawn_blocking({
        let (db, events) = (db.clone(), events.clone());
        move || berth_network::Networks::new(db, events, net_cfg)
    })
    .await
    .map_err(|e| Error::Config(e.to_string()))??;
    let started = async {
        containers.set_networks(networks.clone());
        containers.recover().await;
        let running: Vec<String> =
            containers.list().into_iter().filter(|c| c.state.is_running()).map(|c| c.id.clone()).collect();
        if let Err(e) = networks.reconcile(&running) {
            tracing::warn!("restoring network state: {e}");
        }
        let usage = Arc::new(ContainerUsage(containers.clone()));
        let builder = berth_builder::Builder::new(images.clone(), containers.clone())?;
        builder.set_puller(crate::registry::builder_puller(registry.clone(), images.clone(), events.clone()));
        let engine =
            Arc::new(Engine { images, containers, events, usage, registry, builder, info, networks: networks.clone() });
        let listener = bind_socket(&sock, opts.group.as_deref())?;
        Ok::<_, Error>((engine, listener))
    }
    .await;
    let (engine, listener) = match started {
        Ok(s) => s,
        Err(e) => {
            // Failing after networking was set up: take it down again.
            let n = networks.clone();
            let _ = tokio::task::spawn_blocking(move || n.shutdown()).await;
            return Err(e);
        }
    };
    tracing::info!("API listening on {}", sock.display());

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = berth_api::router(engine.clone());
    let server = tokio::spawn(berth_api::serve(listener, app, stop_rx));
    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = fs::remove_file(&sock);
    let _ = tokio::task::spawn_blocking(move || networks.shutdown()).await;
    Ok(())
}

fn exec_root_of(root: &Path, opts: &Options) -> PathBuf {
    opts.exec_root.clone().unwrap_or_else(|| {
        if root == Path::new(DEFAULT_DATA_ROOT) {
            PathBuf::from("/run/berth")
        } else {
            root.join("exec")
        }
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {},
                _ = i.recv() => {},
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
