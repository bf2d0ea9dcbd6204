//! The container manager: every lifecycle operation, serialised per
//! container, with state persisted before it is reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_events::EventBus;
use berth_image::ImageStore;
use berth_meta::Db;
use berth_shim::{ShimClient, SpawnOptions};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use crate::config::{self, entrypoint_and_args, merge_image_config, normalize_config, normalize_host_config};
use crate::model::{now_rfc3339, valid_name, Container, State, Status, ZERO_TIME};
use crate::store::ContainerStore;
use crate::{logs, netns, spec, Error, Result};

mod etc;
mod exec;
mod fsops;
mod io;
mod network;
pub mod task;
mod volumes;

use etc::{host_hostname, write_etc_files};
use io::pump;

/// Where things live and which binaries to use.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub data_root: PathBuf,
    /// Runtime state and shim sockets (a tmpfs like /run in production).
    pub exec_root: PathBuf,
    pub shim_bin: PathBuf,
    /// name → path of runc-compatible runtimes.
    pub runtimes: HashMap<String, PathBuf>,
    pub default_runtime: String,
    pub cgroup_parent: String,
    pub log_max_size: u64,
    pub log_max_files: u32,
}

#[derive(Debug, Clone)]
pub struct CreateResult {
    pub id: String,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

#[derive(Debug, Clone, Copy)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

/// An exec instance (`docker exec`).
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub working_dir: String,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub privileged: bool,
    pub detach_keys: String,
}

#[derive(Debug, Clone)]
pub struct ExecInfo {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
    pub started: bool,
}

type Io = Box<dyn AsyncReadWrite>;
pub trait AsyncReadWrite: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncReadWrite for T {}

struct PendingAttach {
    io: Io,
    opts: AttachOptions,
}

pub struct Manager {
    cfg: ManagerConfig,
    store: ContainerStore,
    images: Arc<ImageStore>,
    events: Arc<EventBus>,
    /// One operation at a time per container.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped on every state change; waiters re-check their condition.
    changed: watch::Sender<u64>,
    pending: Mutex<HashMap<String, Vec<PendingAttach>>>,
    execs: Mutex<HashMap<String, ExecInfo>>,
    /// Shim shutdowns (runtime delete) still running after an exit.
    shutdowns: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    volumes: Arc<berth_volume::VolumeStore>,
    /// Bridge networks, NAT and ports (unset: containers get a bare namespace).
    networks: std::sync::OnceLock<Arc<berth_network::Networks>>,
}

/// The static `--init` binary, built from init/init.c (empty when the build
/// machine had no static libc).
const INIT_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));

fn random_id() -> String {
    let mut buf = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Docker's generated names: adjective_surname.
fn random_name(seed: &str) -> String {
    const LEFT: &[&str] = &[
        "admiring", "bold", "brave", "clever", "dazzling", "eager", "festive", "gifted", "happy", "jolly", "keen",
        "lucid", "nifty", "quirky", "serene", "vibrant", "wizardly", "zealous",
    ];
    const RIGHT: &[&str] = &[
        "babbage", "curie", "darwin", "euclid", "fermat", "galileo", "hopper", "knuth", "lovelace", "noether",
        "pascal", "ritchie", "shannon", "turing", "wozniak", "yonath",
    ];
    let n = u64::from_str_radix(&seed[..12.min(seed.len())], 16).unwrap_or(0);
    format!("{}_{}", LEFT[(n % LEFT.len() as u64) as usize], RIGHT[((n / 97) % RIGHT.len() as u64) as usize])
}

fn signal_number(s: &str) -> Result<i32> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i32>() {
        if n > 0 && n < 65 {
            return Ok(n);
        }
        return Err(Error::InvalidArgument(format!("Invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(Error::InvalidArgument(format!("Invalid signal: {s}"))),
    };
    Ok(n)
}

pub fn parse_signal(s: &str) -> Result<i32> {
    signal_number(s)
}

impl Manager {
    pub fn new(cfg: ManagerConfig, db: Arc<Db>, images: Arc<ImageStore>, events: Arc<EventBus>) -> Result<Arc<Self>> {
        std::fs::create_dir_all(cfg.data_root.join("containers")).map_err(Error::io("creating containers dir"))?;
        std::fs::create_dir_all(&cfg.exec_root).map_err(Error::io("creating exec root"))?;
        if !INIT_BINARY.is_empty() {
            use std::os::unix::fs::PermissionsExt;
            let p = cfg.data_root.join("berth-init");
            let tmp = cfg.data_root.join("berth-init.tmp");
            std::fs::write(&tmp, INIT_BINARY).map_err(Error::io("writing the init binary"))?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).map_err(Error::io("chmod init"))?;
            std::fs::rename(&tmp, &p).map_err(Error::io("installing the init binary"))?;
        }
        let volumes = Arc::new(berth_volume::VolumeStore::open(db.clone(), &cfg.data_root.join("volumes"))?);
        let store = ContainerStore::open(db)?;
        let (changed, _) = watch::channel(0);
        Ok(Arc::new(Self {
            cfg,
            store,
            images,
            events,
            locks: Mutex::new(HashMap::new()),
            changed,
            pending: Mutex::new(HashMap::new()),
            execs: Mutex::new(HashMap::new()),
            shutdowns: Mutex::new(HashMap::new()),
            volumes,
            networks: std::sync::OnceLock::new(),
        }))
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut l = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        l.entry(id.to_string()).or_default().clone()
    }

    fn bump(&self) {
        self.changed.send_modify(|g| *g = g.wrapping_add(1));
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.cfg.data_root.join("containers").join(id)
    }

    fn state_dir(&self, id: &str) -> PathBuf {
        // Unix socket paths are limited to 107 bytes: a 16-hex prefix is
        // unique in practice and keeps <exec-root>/<id>/shim.sock short.
        self.cfg.exec_root.join(&id[..16.min(id.len())])
    }

    fn runtime_root(&self, runtime: &str) -> PathBuf {
        self.cfg.exec_root.join(format!("runtime-{runtime}"))
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(format!("{id}-json.log"))
    }

    fn emit(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let mut attrs: Vec<(String, String)> =
            vec![("image".into(), c.image_name().to_string()), ("name".into(), c.name.clone())];
        for (k, v) in c.labels() {
            if let Some(s) = v.as_str() {
                attrs.push((k.clone(), s.to_string()));
            }
        }
        for (k, v) in extra {
            attrs.push((k.to_string(), v.clone()));
        }
        let refs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.events.emit("container", action, &c.id, &refs);
    }

    pub fn resolve(&self, name: &str) -> Result<Container> {
        self.store.resolve(name)
    }

    pub fn list(&self) -> Vec<Container> {
        self.store.all()
    }

    pub fn count(&self) -> usize {
        self.store.count()
    }

    /// Image IDs used by containers (for image deletion rules).
    pub fn containers_using_image(&self, image_id: &str) -> Vec<(String, bool)> {
        self.store
            .all()
            .into_iter()
            .filter(|c| c.image == image_id)
            .map(|c| (c.id.clone(), c.state.is_running()))
            .collect()
    }

    /// `POST /containers/create`.
    pub async fn create(self: &Arc<Self>, name: Option<&str>, body: &Value) -> Result<CreateResult> {
        let raw = body.as_object().ok_or_else(|| Error::InvalidArgument("invalid JSON: expected an object".into()))?;
        let mut cfg = normalize_config(raw)?;
        let hc_raw = raw.iter().find(|(k, _)| k.eq_ignore_ascii_case("HostConfig")).and_then(|(_, v)| v.as_object());
        let mut hc = normalize_host_config(hc_raw);
        config::validate_restart(&hc)?;
        let image_name = cfg.get("Image").and_then(Value::as_str).unwrap_or("").to_string();
        if image_name.is_empty() {
            return Err(Error::InvalidArgument("No image specified".into()));
        }
        if let Some(n) = name {
            let n = n.strip_prefix('/').unwrap_or(n);
            if !valid_name(n) {
                return Err(Error::InvalidArgument(format!(
                    "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        let runtime = hc
            .get("Runtime")
            .and_then(Value::as_str)
            .filter(|r| !r.is_empty())
            .unwrap_or(&self.cfg.default_runtime)
            .to_string();
        if !self.cfg.runtimes.contains_key(&runtime) {
            return Err(Error::InvalidArgument(format!("unknown or invalid runtime name: {runtime}")));
        }
        let nm = hc.get("NetworkMode").and_then(Value::as_str).unwrap_or("bridge").to_string();
        let requested_networks = self.requested_networks(&nm, raw)?;
        // Fail early (and create nothing) on ulimits the host cannot give.
        spec::rlimits(&hc)?;
        let images = self.images.clone();
        let iname = image_name.clone();
        let img = tokio::task::spawn_blocking(move || images.get(&iname))
            .await
            .map_err(|e| Error::Internal(e.to_string()))??;
        merge_image_config(&mut cfg, &img.config.container_config());
        let (path, args) = entrypoint_and_args(&cfg)?;
        let id = random_id();
        let name = match name {
            Some(n) => n.strip_prefix('/').unwrap_or(n).to_string(),
            None => {
                let mut n = random_name(&id);
                if self.store.resolve(&n).is_ok() {
                    n = format!("{n}_{}", &id[..6]);
                }
                n
            }
        };
        if cfg.get("Hostname").and_then(Value::as_str).is_none_or(str::is_empty) {
            let h = if nm == "host" { host_hostname() } else { id[..12].to_string() };
            cfg.insert("Hostname".into(), Value::String(h));
        }
        hc.insert("Runtime".into(), Value::String(runtime.clone()));
        let (mount_points, made) = {
            let me = self.clone();
            let (cfg2, hc2) = (cfg.clone(), hc.clone());
            tokio::task::spawn_blocking(move || me.register_mounts(&cfg2, &hc2))
                .await
                .map_err(|e| Error::Internal(e.to_string()))??
        };
        let c = Container {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            path,
            args,
            config: cfg,
            host_config: hc,
            image: img.id.clone(),
            state: State::default(),
            restart_count: 0,
            stopped_by_user: false,
            has_been_started: false,
            runtime,
            shim_pid: 0,
            mount_points,
            network_settings: berth_network::Networks::stopped_settings(&requested_networks),
            requested_networks,
        };
        // The writable layer and the container's files, then the record: a
        // crash before the record leaves only a directory the GC can remove.
        let dir = self.container_dir(&id);
        let parent = img.top_chain_id().map(String::from);
        let images = self.images.clone();
        let c2 = c.clone();
        let dir2 = dir.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            std::fs::create_dir_all(dir2.join("rootfs")).map_err(Error::io("creating container dir"))?;
            images.snapshots().prepare(&c2.id, parent.as_deref())?;
            write_etc_files(&dir2, &c2)?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .inspect_err(|_| {
            let _ = self.images.snapshots().remove(&id);
            let _ = std::fs::remove_dir_all(&dir);
            self.undo_created(&made);
        })?;
        if let Err(e) = self.store.insert(&c) {
            let _ = self.images.snapshots().remove(&id);
            let _ = std::fs::remove_dir_all(&dir);
            self.undo_created(&made);
            return Err(e);
        }
        self.emit(&c, "create", &[]);
        self.bump();
        Ok(CreateResult { id, warnings: Vec::new() })
    }

    /// Registers an attach before the container starts (`docker run` attaches
    /// first), or connects it to the running container's shim.
    pub async fn attach(self: &Arc<Self>, name: &str, opts: AttachOptions, io: Io) -> Result<()> {
        let c = self.store.resolve(name)?;
        match c.state.status {
            Status::Running | Status::Paused => {
                let sd = self.state_dir(&c.id);
                let stream = tokio::task::spawn_blocking(move || -> Result<std::os::unix::net::UnixStream> {
                    let client = ShimClient::connect(&sd)?;
                    Ok(client.attach(opts.stdin, opts.stdout, opts.stderr)?.stream)
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
                tokio::spawn(pump(io, stream));
                Ok(())
            }
            Status::Created | Status::Exited | Status::Restarting => {
                if c.state.status == Status::Exited && c.state.finished_at != ZERO_TIME && !c.auto_remove() {
                    // Docker allows attaching to a stopped container that is
                    // then started; keep it pending like a created one.
                }
                self.pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(c.id.clone())
                    .or_default()
                    .push(PendingAttach { io, opts });
                Ok(())
            }
            _ => Err(Error::Conflict("You cannot attach to a stopped container, start it first".to_string())),
        }
    }

    /// `POST /containers/{id}/start`.
    pub async fn start(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.store.resolve(name)?;
        let lock = self.lock_for(&c.id);
        let _g = lock.lock().await;
        let mut c = self.store.resolve(&c.id)?;
        if c.state.status == Status::Running || c.state.status == Status::Paused {
            return Err(Error::NotModified("container already started".into()));
        }
        if matches!(c.state.status, Status::Removing | Status::Dead) {
            return Err(Error::Conflict(format!("cannot start a container that is {}", c.state.status.as_str())));
        }
        match self.start_locked(&mut c).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.drop_pending(&c.id);
                drop(_g);
                // Docker removes an auto-remove container whose start failed;
                // `docker run --rm` waits for that removal.
                if c.auto_remove() {
                    if let Err(re) = self.remove_with_volumes(&c.id, true, true).await {
                        tracing::warn!("removing {} after a failed start: {re}", c.short_id());
                    }
                }
                Err(e)
            }
        }
    }

    fn drop_pending(&self, id: &str) {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Waits for the previous run's shim shutdown (its runtime `delete`):
    /// the runtime refuses to create a container whose ID still exists.
    async fn finish_shutdown(&self, id: &str) {
        let h = self.shutdowns.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        if let Some(h) = h {
            let _ = h.await;
        }
    }

    async fn start_locked(self: &Arc<Self>, c: &mut Container) -> Result<()> {
        self.finish_shutdown(&c.id).await;
        let dir = self.container_dir(&c.id);
        let rootfs = dir.join("rootfs");
        let sd = self.state_dir(&c.id);
        let runtime = self
            .cfg
            .runtimes
            .get(&c.runtime)
            .cloned()
            .ok_or_else(|| Error::InvalidArgument(format!("unknown or invalid runtime name: {}", c.runtime)))?;
        let mut opts = SpawnOptions::new(&self.cfg.shim_bin, c.id.clone(), &dir, &sd, runtime);
        opts.runtime_root = Some(self.runtime_root(&c.runtime));
        opts.tty = c.tty();
        opts.stdin = c.open_stdin();
        opts.stdin_once = c.stdin_once();
        opts.log_path = Some(self.log_path(&c.id));
        let (max_size, max_files) = log_limits(&c.host_config, self.cfg.log_max_size, self.cfg.log_max_files)?;
        opts.log_max_size = Some(max_size);
        opts.log_max_files = Some(max_files);
        opts.no_start = true;
        opts.no_delete = true;
        opts.shim_log = Some(dir.join("shim.log"));
        let images = self.images.clone();
        let c2 = c.clone();
        let cgroup_parent = self.cfg.cgroup_parent.clone();
        let sd_outer = sd.clone();
        let init_path = if c.host_config.get("Init").and_then(Value::as_bool).unwrap_or(false) {
            if INIT_BINARY.is_empty() {
                return Err(Error::InvalidArgument(
                    "--init is unavailable: berth was built without a static init binary".into(),
                ));
            }
            Some(self.cfg.data_root.join("berth-init"))
        } else {
            None
        };
        let me = self.clone();
        let (choice, attached) = self.net_attach(c).await?;
        let netns = match choice {
            network::NetnsChoice::New => None,
            network::NetnsChoice::Host => Some(None),
            network::NetnsChoice::Join(p) => Some(Some(p)),
        };
        let own_netns = matches!(&netns, Some(Some(_))) || c.network_mode() == "host";
        if let Some(a) = &attached {
            let host_gw = self.net().and_then(|n| n.host_gateway());
            if let Err(e) = network::write_net_files(&dir, c, a, host_gw) {
                self.net_detach(&c.id).await;
                return Err(e);
            }
        }
        let spawned = tokio::task::spawn_blocking(move || -> Result<berth_shim::SpawnResult> {
            let mounts = images.snapshots().mounts(&c2.id)?;
            if !is_mountpoint(&rootfs) {
                berth_snapshot::mount_all(&mounts, &rootfs)?;
            }
            // Mounts the daemon makes under the rootfs later (`cp` into a
            // volume) must not propagate into the container.
            let _ =
                nix::mount::mount(None::<&str>, &rootfs, None::<&str>, nix::mount::MsFlags::MS_PRIVATE, None::<&str>);
            let user_mounts = match me.setup_mounts(&c2, &rootfs) {
                Ok(m) => m,
                Err(e) => {
                    let _ = berth_snapshot::unmount(&rootfs);
                    return Err(e);
                }
            };
            let spec_res = spec::build(&spec::SpecInputs {
                id: &c2.id,
                rootfs: &rootfs,
                config: &c2.config,
                host_config: &c2.host_config,
                path: &c2.path,
                args: &c2.args,
                hostname: c2.config.get("Hostname").and_then(Value::as_str).unwrap_or(""),
                hosts_path: &dir.join("hosts"),
                hostname_path: &dir.join("hostname"),
                resolv_path: &dir.join("resolv.conf"),
                netns,
                cgroup_parent: &cgroup_parent,
                init_path: init_path.as_deref(),
                user_mounts: &user_mounts,
            });
            let spec = match spec_res {
                Ok(s) => s,
                Err(e) => {
                    let _ = berth_snapshot::unmount(&rootfs);
                    return Err(e);
                }
            };
            let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Internal(e.to_string()))?;
            std::fs::write(dir.join("config.json"), bytes).map_err(Error::io("writing config.json"))?;
            let _ = std::fs::remove_dir_all(&sd);
            match berth_shim::spawn(&opts) {
                Ok(r) => Ok(r),
                Err(e) => {
                    let _ = berth_snapshot::unmount(&rootfs);
                    let _ = std::fs::remove_dir_all(&sd);
                    Err(e.into())
                }
            }
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()));
        let spawned = match spawned.and_then(|r| r) {
            Ok(s) => s,
            Err(e) => {
                self.release_mounts(c);
                self.net_detach(&c.id).await;
                let msg = e.to_string();
                let (code, kind) = berth_shim::protocol::classify_start_error(&msg);
                c.state.exit_code = code;
                c.state.error = msg.clone();
                self.store.save(c)?;
                self.bump();
                return Err(match e {
                    Error::InvalidArgument(_) => e,
                    _ => start_error(kind, msg),
                });
            }
        };
        if !own_netns {
            if let Err(e) = netns::loopback_up(spawned.container_pid) {
                tracing::warn!("bringing up lo in {}: {e}", c.short_id());
            }
        }
        let sd = sd_outer;
        // Attaches that came before start get the output from the first byte.
        let pending: Vec<PendingAttach> =
            self.pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&c.id).unwrap_or_default();
        for p in pending {
            let sd = sd.clone();
            let opts = p.opts;
            let stream = tokio::task::spawn_blocking(move || -> Result<std::os::unix::net::UnixStream> {
                let client = ShimClient::connect(&sd)?;
                Ok(client.attach(opts.stdin, opts.stdout, opts.stderr)?.stream)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
            match stream {
                Ok(s) => {
                    tokio::spawn(pump(p.io, s));
                }
                Err(e) => tracing::warn!("attach to {}: {e}", c.short_id()),
            }
        }
        let sd2 = sd.clone();
        // The monitor's connection is opened before the process starts: the
        // shim stays until a connected client has seen the exit, so a
        // container that exits at once is still observed (and cleaned up).
        let started = tokio::task::spawn_blocking(move || -> Result<(i32, ShimClient)> {
            let monitor = ShimClient::connect(&sd2)?;
            let pid = ShimClient::connect(&sd2)?.start()?;
            Ok((pid, monitor))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        let (pid, monitor) = match started {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                let (code, kind) = berth_shim::protocol::classify_start_error(&msg);
                let sd3 = sd.clone();
                let rootfs = self.container_dir(&c.id).join("rootfs");
                let _ = tokio::task::spawn_blocking(move || {
                    if let Ok(mut cl) = ShimClient::connect(&sd3) {
                        let _ = cl.kill(9, true);
                        let _ = cl.shutdown();
                    }
                    let _ = berth_snapshot::unmount(&rootfs);
                })
                .await;
                self.release_mounts(c);
                self.net_detach(&c.id).await;
                c.state.exit_code = code;
                c.state.error = msg.clone();
                self.store.save(c)?;
                self.bump();
                return Err(start_error(kind, msg));
            }
        };
        c.state = State {
            status: Status::Running,
            pid,
            exit_code: 0,
            error: String::new(),
            started_at: now_rfc3339(),
            finished_at: c.state.finished_at.clone(),
            oom_killed: false,
        };
        c.shim_pid = spawned.shim_pid;
        if let Some(a) = attached {
            c.network_settings = a.settings;
        }
        c.has_been_started = true;
        c.stopped_by_user = false;
        self.store.save(c)?;
        self.emit(c, "start", &[]);
        self.bump();
        self.spawn_monitor(c.id.clone(), Some(monitor));
        Ok(())
    }

    fn spawn_monitor(self: &Arc<Self>, id: String, client: Option<ShimClient>) {
        let me = self.clone();
        tokio::spawn(async move {
            let sd = me.state_dir(&id);
            let rec = tokio::task::spawn_blocking(move || -> Result<berth_shim::protocol::ExitRecord> {
                let mut cl = match client {
                    Some(c) => c,
                    None => ShimClient::connect(&sd)?,
                };
                Ok(cl.wait()?)
            })
            .await;
            let rec = match rec {
                Ok(Ok(r)) => Some(r),
                Ok(Err(e)) => {
                    tracing::warn!("waiting for {}: {e}", &id[..12]);
                    berth_shim::client::read_exit_record(&me.state_dir(&id)).ok().flatten()
                }
                Err(_) => None,
            };
            me.handle_exit(&id, rec).await;
        });
    }

    /// Records an exit, cleans the runtime state up, then applies `--rm` or
    /// the restart policy.
    async fn handle_exit(self: &Arc<Self>, id: &str, rec: Option<berth_shim::protocol::ExitRecord>) {
        let lock = self.lock_for(id);
        let guard = lock.lock().await;
        let Ok(mut c) = self.store.resolve(id) else { return };
        let sd = self.state_dir(id);
        let rootfs = self.container_dir(id).join("rootfs");
        let runtime = self.cfg.runtimes.get(&c.runtime).cloned();
        let runtime_root = self.runtime_root(&c.runtime);
        let cid = c.id.clone();
        // The shim's shutdown runs the runtime's `delete` (cgroups, runtime
        // state), which takes tens of milliseconds; it needs nothing from
        // the steps below, so it runs beside them instead of before them.
        let rootfs2 = rootfs.clone();
        let _ = tokio::task::spawn_blocking(move || berth_snapshot::unmount(&rootfs2)).await;
        self.release_mounts(&c);
        let shutdown = tokio::task::spawn_blocking(move || {
            let shut = ShimClient::connect(&sd).and_then(|mut cl| cl.shutdown());
            if shut.is_err() {
                // The shim is gone (killed, or a reboot): the runtime's state
                // and cgroup are ours to remove.
                if let Some(rt) = runtime {
                    let _ = std::process::Command::new(rt)
                        .arg("--root")
                        .arg(&runtime_root)
                        .args(["delete", "--force"])
                        .arg(&cid)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status();
                }
            }
            let _ = std::fs::remove_dir_all(&sd);
        });
        self.shutdowns.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_string(), shutdown);
        let (code, at, oom) = match rec {
            Some(r) => (r.exit_code, r.exited_at, r.oom_killed),
            // The shim vanished without a record (e.g. a host reboot): Docker
            // reports 255 then.
            None => (255, now_rfc3339(), false),
        };
        let ran_for = chrono::DateTime::parse_from_rfc3339(&c.state.started_at)
            .ok()
            .zip(chrono::DateTime::parse_from_rfc3339(&at).ok())
            .map(|(s, e)| (e - s).num_milliseconds())
            .unwrap_or(0);
        c.state.status = Status::Exited;
        c.state.pid = 0;
        c.state.exit_code = code;
        c.state.finished_at = at;
        c.state.oom_killed = oom;
        c.shim_pid = 0;
        self.net_detach(id).await;
        c.network_settings = self.stopped_settings(&c);
        if let Err(e) = self.store.save(&c) {
            tracing::error!("saving exit of {}: {e}", c.short_id());
        }
        self.emit(&c, "die", &[("exitCode", code.to_string())]);
        self.bump();
        drop(guard);
        if c.auto_remove() {
            if let Err(e) = self.remove_with_volumes(id, true, true).await {
                tracing::warn!("auto-removing {}: {e}", c.short_id());
            }
            return;
        }
        let (policy, max) = c.restart_policy();
        let restart = !c.stopped_by_user
            && match policy.as_str() {
                "always" | "unless-stopped" => true,
                "on-failure" => code != 0 && (max == 0 || (c.restart_count as i64) < max),
                _ => false,
            };
        if restart {
            // Docker's back-off: 100 ms doubling per restart up to a minute,
            // reset once a container ran for 10 s.
            let n = if ran_for >= 10_000 { 0 } else { c.restart_count.min(10) };
            let delay = Duration::from_millis((100u64 << n).min(60_000));
            if let Ok(mut c2) = self.store.resolve(id) {
                c2.state.status = Status::Restarting;
                c2.restart_count += 1;
                let _ = self.store.save(&c2);
                self.bump();
            }
            let me = self.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                // The user may have stopped or removed it meanwhile.
                match me.store.resolve(&id) {
                    Ok(c) if c.state.status == Status::Restarting && !c.stopped_by_user => {
                        if let Err(e) = me.restart_now(&id).await {
                            tracing::warn!("restarting {}: {e}", &id[..12]);
                        }
                    }
                    _ => {}
                }
            });
        }
    }

    async fn restart_now(self: &Arc<Self>, id: &str) -> Result<()> {
        let lock = self.lock_for(id);
        let _g = lock.lock().await;
        let mut c = self.store.resolve(id)?;
        if c.state.status == Status::Running {
            return Ok(());
        }
        let res = self.start_locked(&mut c).await;
        if res.is_err() {
            if let Ok(mut c2) = self.store.resolve(id) {
                c2.state.status = Status::Exited;
                let _ = self.store.save(&c2);
                self.bump();
            }
        }
        res
    }

    fn shim_kill(&self, id: &str, signal: i32) -> impl std::future::Future<Output = Result<()>> {
        let sd = self.state_dir(id);
        async move {
            tokio::task::spawn_blocking(move || -> Result<()> {
                let mut cl = ShimClient::connect(&sd)?;
                cl.kill(signal, signal == 9)?;
                Ok(())
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
        }
    }

    /// `POST /containers/{id}/kill`.
    pub async fn kill(self: &Arc<Self>, name: &str, signal: Option<&str>) -> Result<()> {
        let sig = signal_number(signal.filter(|s| !s.is_empty()).unwrap_or("SIGKILL"))?;
        let c = self.store.resolve(name)?;
        if !c.state.is_running() || c.state.status == Status::Restarting {
            return Err(Error::Conflict(format!("cannot kill container: {}: container {} is not running", name, c.id)));
        }
        if sig == 9 || sig == 15 || sig == 2 {
            if let Ok(mut c2) = self.store.resolve(&c.id) {
                // A user-initiated kill counts as a stop for the restart policy.
                c2.stopped_by_user = true;
                let _ = self.store.save(&c2);
            }
        }
        self.shim_kill(&c.id, sig).await?;
        self.emit(&c, "kill", &[("signal", sig.to_string())]);
        Ok(())
    }

    /// Waits until `id` is no longer running, up to `timeout`.
    async fn wait_stopped(&self, id: &str, timeout: Option<Duration>) -> bool {
        let mut rx = self.changed.subscribe();
        let check =
            |m: &Self| m.store.get(id).is_none_or(|c| !c.state.is_running() || c.state.status == Status::Restarting);
        let fut = async {
            loop {
                if check(self) {
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut).await.is_ok(),
            None => {
                fut.await;
                true
            }
        }
    }

    /// `POST /containers/{id}/stop`: the stop signal, then SIGKILL after the timeout.
    pub async fn stop(self: &Arc<Self>, name: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<()> {
        let c = self.store.resolve(name)?;
        if c.state.status == Status::Restarting {
            // Stopping a restarting container cancels the pending restart.
            let mut c2 = c.clone();
            c2.stopped_by_user = true;
            c2.state.status = Status::Exited;
            self.store.save(&c2)?;
            self.bump();
            return Ok(());
        }
        if !c.state.is_running() {
            return Err(Error::NotModified("container already stopped".into()));
        }
        {
            let mut c2 = self.store.resolve(&c.id)?;
            c2.stopped_by_user = true;
            self.store.save(&c2)?;
        }
        let sig = signal_number(
            signal.filter(|s| !s.is_empty()).map(String::from).unwrap_or_else(|| c.stop_signal()).as_str(),
        )?;
        let t = timeout.unwrap_or_else(|| c.stop_timeout());
        if c.state.status == Status::Paused {
            // A frozen process cannot act on a signal; SIGKILL works after a thaw.
            let _ = self.runtime_cmd(&c, "resume").await;
        }
        let _ = self.shim_kill(&c.id, sig).await;
        let graceful = if t < 0 { Some(None) } else { Some(Some(Duration::from_secs(t as u64))) };
        let stopped = match graceful {
            Some(to) => self.wait_stopped(&c.id, to).await,
            None => false,
        };
        if !stopped {
            let _ = self.shim_kill(&c.id, 9).await;
            self.wait_stopped(&c.id, Some(Duration::from_secs(30))).await;
        }
        self.emit(&c, "stop", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/restart`.
    pub async fn restart(self: &Arc<Self>, name: &str, signal: Option<&str>, timeout: Option<i64>) -> Result<()> {
        let c = self.store.resolve(name)?;
        match self.stop(&c.id, signal, timeout).await {
            Ok(()) | Err(Error::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        self.start(&c.id).await?;
        self.emit(&c, "restart", &[]);
        Ok(())
    }

    async fn runtime_cmd(&self, c: &Container, verb: &str) -> Result<()> {
        let runtime = self.cfg.runtimes.get(&c.runtime).cloned().unwrap_or_else(|| PathBuf::from(&c.runtime));
        let out = tokio::process::Command::new(runtime)
            .arg("--root")
            .arg(self.runtime_root(&c.runtime))
            .arg(verb)
            .arg(&c.id)
            .output()
            .await
            .map_err(Error::io(format!("running runtime {verb}")))?;
        if !out.status.success() {
            return Err(Error::Internal(format!(
                "runtime {verb} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    pub async fn pause(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.store.resolve(name)?;
        let lock = self.lock_for(&c.id);
        let _g = lock.lock().await;
        let mut c = self.store.resolve(&c.id)?;
        if c.state.status == Status::Paused {
            return Err(Error::Conflict(format!("Container {} is already paused", c.id)));
        }
        if c.state.status != Status::Running {
            return Err(Error::Conflict(format!("Container {} is not running", c.id)));
        }
        self.runtime_cmd(&c, "pause").await?;
        c.state.status = Status::Paused;
        self.store.save(&c)?;
        self.emit(&c, "pause", &[]);
        self.bump();
        Ok(())
    }

    pub async fn unpause(self: &Arc<Self>, name: &str) -> Result<()> {
        let c = self.store.resolve(name)?;
        let lock = self.lock_for(&c.id);
        let _g = lock.lock().await;
        let mut c = self.store.resolve(&c.id)?;
        if c.state.status != Status::Paused {
            return Err(Error::Conflict(format!("Container {} is not paused", c.id)));
        }
        self.runtime_cmd(&c, "resume").await?;
        c.state.status = Status::Running;
        self.store.save(&c)?;
        self.emit(&c, "unpause", &[]);
        self.bump();
        Ok(())
    }

    /// `DELETE /containers/{id}`.
    pub async fn remove(self: &Arc<Self>, name: &str, force: bool) -> Result<()> {
        self.remove_with_volumes(name, force, false).await
    }

    /// `DELETE /containers/{id}?v=1`: also removes the container's anonymous
    /// volumes.
    pub async fn remove_with_volumes(self: &Arc<Self>, name: &str, force: bool, volumes: bool) -> Result<()> {
        let c = self.store.resolve(name)?;
        if c.state.is_running() && c.state.status != Status::Restarting {
            if !force {
                let what = if c.state.status == Status::Paused { "paused" } else { "running" };
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    c.name
                )));
            }
            {
                let mut c2 = self.store.resolve(&c.id)?;
                c2.stopped_by_user = true;
                self.store.save(&c2)?;
            }
            if c.state.status == Status::Paused {
                let _ = self.runtime_cmd(&c, "resume").await;
            }
            let _ = self.shim_kill(&c.id, 9).await;
            if !self.wait_stopped(&c.id, Some(Duration::from_secs(30))).await {
                return Err(Error::Internal(format!("could not kill container {}", c.id)));
            }
        }
        let lock = self.lock_for(&c.id);
        let _g = lock.lock().await;
        let Ok(mut c) = self.store.resolve(&c.id) else {
            // Removed meanwhile (auto-remove): done.
            return Ok(());
        };
        c.state.status = Status::Removing;
        c.stopped_by_user = true;
        self.store.save(&c)?;
        self.bump();
        self.net_detach(&c.id).await;
        let dir = self.container_dir(&c.id);
        let sd = self.state_dir(&c.id);
        let images = self.images.clone();
        let id = c.id.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let rootfs = dir.join("rootfs");
            if is_mountpoint(&rootfs) {
                berth_snapshot::unmount(&rootfs)?;
            }
            match images.snapshots().remove(&id) {
                Ok(()) => {}
                Err(e) if e.kind() == berth_error::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            let _ = std::fs::remove_dir_all(&sd);
            std::fs::remove_dir_all(&dir)
                .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
                .map_err(Error::io("removing container dir"))?;
            Ok(())
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        self.store.delete(&c.id)?;
        self.release_mounts(&c);
        if volumes {
            self.remove_anonymous_volumes(&c);
        }
        self.drop_pending(&c.id);
        self.execs.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, e| e.container_id != c.id);
        self.emit(&c, "destroy", &[]);
        self.bump();
        Ok(())
    }

    /// `POST /containers/{id}/wait`: resolves once the condition holds,
    /// returning the exit code (and the error text, if any).
    pub async fn wait(self: &Arc<Self>, name: &str, cond: WaitCondition) -> Result<(i32, String)> {
        let c = self.store.resolve(name)?;
        let id = c.id.clone();
        let mut rx = self.changed.subscribe();
        let start_finished = c.state.finished_at.clone();
        let mut last = c;
        loop {
            let cur = self.store.get(&id);
            match (&cur, cond) {
                (None, _) => return Ok((last.state.exit_code, last.state.error.clone())),
                (Some(c), WaitCondition::NotRunning)
                    if !c.state.is_running() || c.state.status == Status::Restarting =>
                {
                    return Ok((c.state.exit_code, c.state.error.clone()))
                }
                (Some(c), WaitCondition::NextExit)
                    if c.state.finished_at != start_finished && !c.state.is_running() =>
                {
                    return Ok((c.state.exit_code, c.state.error.clone()))
                }
                (Some(c), WaitCondition::NextExit)
                    if c.state.status == Status::Restarting && c.state.finished_at != start_finished =>
                {
                    return Ok((c.state.exit_code, c.state.error.clone()))
                }
                _ => {}
            }
            if let Some(c) = cur {
                last = c;
            }
            if rx.changed().await.is_err() {
                return Err(Error::Internal("daemon shutting down".into()));
            }
        }
    }

    /// `POST /containers/{id}/rename`.
    pub async fn rename(self: &Arc<Self>, name: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.strip_prefix('/').unwrap_or(new_name);
        if !valid_name(new_name) {
            return Err(Error::InvalidArgument(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let c = self.store.resolve(name)?;
        let lock = self.lock_for(&c.id);
        let _g = lock.lock().await;
        let mut c = self.store.resolve(&c.id)?;
        if c.name == new_name {
            return Err(Error::InvalidArgument("Renaming a container with the same name as its current name".into()));
        }
        let old = std::mem::replace(&mut c.name, new_name.to_string());
        self.store.save(&c)?;
        self.emit(&c, "rename", &[("oldName", format!("/{old}"))]);
        self.bump();
        Ok(())
    }

    /// `POST /containers/{id}/update` (restart policy and resources recorded;
    /// resources apply at the next start).
    pub async fn update(self: &Arc<Self>, name: &str, body: &Value) -> Result<Vec<String>> {
        let c = self.store.resolve(name)?;
        let lock = self.lock_for(&c.id);
        let _g = lock.lock().await;
        let mut c = self.store.resolve(&c.id)?;
        let obj = body.as_object().ok_or_else(|| Error::InvalidArgument("invalid JSON: expected an object".into()))?;
        let canon = config::canonicalize(obj, config::HOST_CONFIG_FIELDS);
        let mut hc = c.host_config.clone();
        for (k, v) in canon {
            if v.is_null() {
                continue;
            }
            hc.insert(k, v);
        }
        let hc = normalize_host_config(Some(&hc));
        config::validate_restart(&hc)?;
        c.host_config = hc;
        self.store.save(&c)?;
        self.emit(&c, "update", &[]);
        Ok(Vec::new())
    }

    /// `GET /containers/{id}/top`: the container's processes, via the
    /// runtime's `ps` and the host's `ps` (as Docker does).
    pub async fn top(self: &Arc<Self>, name: &str, ps_args: &str) -> Result<(Vec<String>, Vec<Vec<String>>)> {
        let c = self.store.resolve(name)?;
        if c.state.status != Status::Running && c.state.status != Status::Paused {
            return Err(Error::Conflict(format!("Container {} is not running", c.id)));
        }
        let runtime = self.cfg.runtimes.get(&c.runtime).cloned().unwrap_or_else(|| PathBuf::from(&c.runtime));
        let out = tokio::process::Command::new(runtime)
            .arg("--root")
            .arg(self.runtime_root(&c.runtime))
            .args(["ps", "--format", "json"])
            .arg(&c.id)
            .output()
            .await
            .map_err(Error::io("runtime ps"))?;
        let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| vec![c.state.pid as i64]);
        let args: Vec<String> = if ps_args.trim().is_empty() {
            vec!["-ef".into()]
        } else {
            ps_args.split_whitespace().map(String::from).collect()
        };
        let out = tokio::process::Command::new("ps").args(&args).output().await.map_err(Error::io("ps"))?;
        if !out.status.success() {
            return Err(Error::Internal(format!("Error running ps: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// Streams logs into `tx` as Docker's `GET /containers/{id}/logs` does.
    pub async fn logs(
        self: &Arc<Self>,
        name: &str,
        opts: logs::LogOptions,
        tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    ) -> Result<bool> {
        let c = self.store.resolve(name)?;
        let tty = c.tty();
        let path = self.log_path(&c.id);
        let o = opts.clone();
        let p = path.clone();
        let (entries, mut offset) = tokio::task::spawn_blocking(move || logs::read_existing(&p, &o))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let me = self.clone();
        let id = c.id.clone();
        tokio::spawn(async move {
            let render =
                |e: &logs::Entry| if tty { e.payload(opts.timestamps) } else { logs::frame(e, opts.timestamps) };
            for e in &entries {
                if tx.send(render(e)).await.is_err() {
                    return;
                }
            }
            if !opts.follow || opts.until.is_some() {
                return;
            }
            let mut rx = me.changed.subscribe();
            loop {
                let running = me.store.get(&id).is_some_and(|c| c.state.is_running());
                let new = logs::read_new(&path, &mut offset, &opts);
                for e in &new {
                    if tx.send(render(e)).await.is_err() {
                        return;
                    }
                }
                if !running {
                    // One last read after the exit for what the shim drained.
                    for e in logs::read_new(&path, &mut offset, &opts) {
                        if tx.send(render(&e)).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = rx.changed() => {}
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(tty)
    }

    /// `POST /containers/{id}/resize`.
    pub async fn resize(self: &Arc<Self>, name: &str, exec_id: Option<&str>, w: u16, h: u16) -> Result<()> {
        let c = self.store.resolve(name)?;
        if !c.state.is_running() {
            return Err(Error::Conflict(format!("Container {} is not running", c.id)));
        }
        let sd = self.state_dir(&c.id);
        let exec_id = exec_id.map(String::from);
        tokio::task::spawn_blocking(move || -> Result<()> {
            Ok(ShimClient::connect(&sd)?.resize(exec_id.as_deref(), w, h)?)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
    }

    /// After a daemon (re)start: re-attach to every live shim, record exits
    /// that happened while the daemon was away, and apply restart policies.
    pub async fn recover(self: &Arc<Self>) {
        for c in self.store.all() {
            match c.state.status {
                Status::Running | Status::Paused | Status::Restarting => {
                    let sd = self.state_dir(&c.id);
                    let hello =
                        tokio::task::spawn_blocking(move || ShimClient::connect(&sd).and_then(|mut cl| cl.hello()))
                            .await;
                    match hello {
                        Ok(Ok(h)) if h.exit.is_none() && h.status != berth_shim::protocol::Status::Exited => {
                            tracing::info!("container {} still running (pid {})", c.short_id(), h.pid);
                            // Its volumes are still mounted: hold them again so
                            // the last user out unmounts option-backed ones.
                            for mp in c.mount_points.iter().filter(|m| m.kind == "volume") {
                                if let Err(e) = self.volumes.mount(&mp.name, &c.id) {
                                    tracing::warn!("volume {} of {}: {e}", mp.name, c.short_id());
                                }
                            }
                            self.spawn_monitor(c.id.clone(), None);
                        }
                        Ok(Ok(h)) => {
                            self.handle_exit(&c.id, h.exit).await;
                        }
                        _ => {
                            let rec = berth_shim::client::read_exit_record(&self.state_dir(&c.id)).ok().flatten();
                            self.handle_exit(&c.id, rec).await;
                        }
                    }
                }
                Status::Removing => {
                    let _ = self.remove(&c.id, true).await;
                }
                _ => {
                    let (policy, _) = c.restart_policy();
                    let start = c.has_been_started
                        && (policy == "always" || (policy == "unless-stopped" && !c.stopped_by_user));
                    if start {
                        if let Err(e) = self.restart_now(&c.id).await {
                            tracing::warn!("restarting {} on daemon start: {e}", c.short_id());
                        }
                    }
                }
            }
        }
    }

    /// Writable-layer size and the size of the image below it.
    pub fn sizes(&self, c: &Container) -> (u64, u64) {
        let rw = self.images.snapshots().usage(&c.id).unwrap_or(0);
        let img = self.images.get_by_id(&c.image).map(|i| i.size()).unwrap_or(0);
        (rw, rw + img)
    }

    pub fn container_root(&self, id: &str) -> PathBuf {
        self.container_dir(id)
    }
}

/// A start failure with the kind the runtime's message implies (a missing
/// executable is the caller's mistake: 400, as Docker answers).
fn start_error(kind: berth_error::ErrorKind, msg: String) -> Error {
    match kind {
        berth_error::ErrorKind::InvalidArgument | berth_error::ErrorKind::NotFound => Error::InvalidArgument(msg),
        berth_error::ErrorKind::Conflict => Error::Conflict(msg),
        _ => Error::Internal(msg),
    }
}

fn log_limits(hc: &Map<String, Value>, size: u64, files: u32) -> Result<(u64, u32)> {
    let opts =
        hc.get("LogConfig").and_then(|l| l.get("Config")).and_then(Value::as_object).cloned().unwrap_or_default();
    let typ = hc.get("LogConfig").and_then(|l| l.get("Type")).and_then(Value::as_str).unwrap_or("json-file");
    if !typ.is_empty() && typ != "json-file" && typ != "local" {
        return Err(Error::InvalidArgument(format!("logging driver \"{typ}\" is not supported; use json-file")));
    }
    let size = match opts.get("max-size").and_then(Value::as_str) {
        Some(s) => parse_size(s).ok_or_else(|| Error::InvalidArgument(format!("invalid max-size: {s}")))?,
        None => size,
    };
    let files = match opts.get("max-file").and_then(Value::as_str) {
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| Error::InvalidArgument(format!("invalid max-file: {s}")))?,
        None => files,
    };
    Ok((size, files))
}

/// `10m`, `1g`, `512k`, `100` (bytes), as docker's `units.RAMInBytes`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.trim_end_matches('b').len() - 1], 1u64 << 10),
        'm' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 20),
        'g' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    let n: f64 = num.trim().parse().ok()?;
    (n >= 0.0).then_some((n * mult as f64) as u64)
}

fn is_mountpoint(p: &Path) -> bool {
    let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let target = p.display().to_string();
    m.lines().any(|l| l.split_whitespace().nth(4) == Some(target.as_str()))
}

/// Docker's top: keep the header and the rows whose PID is in `pids`.
fn parse_ps(out: &str, pids: &[i64]) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut lines = out.lines();
    let header = lines.next().ok_or_else(|| Error::Internal("ps printed nothing".into()))?;
    let titles: Vec<String> = header.split_whitespace().map(String::from).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| Error::InvalidArgument("Couldn't find PID field in ps output".into()))?;
    let mut rows = Vec::new();
    for l in lines {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() < titles.len() {
            continue;
        }
        let Ok(pid) = fields[pid_col].parse::<i64>() else { continue };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) keeps its spaces.
        let mut row: Vec<String> = fields[..titles.len() - 1].iter().map(|s| s.to_string()).collect();
        row.push(fields[titles.len() - 1..].join(" "));
        rows.push(row);
    }
    Ok((titles, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_docker() {
        assert_eq!(signal_number("SIGTERM").unwrap(), 15);
        assert_eq!(signal_number("kill").unwrap(), 9);
        assert_eq!(signal_number("9").unwrap(), 9);
        assert_eq!(signal_number("SIGWINCH").unwrap(), 28);
        assert!(signal_number("SIGFOO").is_err());
        assert!(signal_number("0").is_err());
    }

    #[test]
    fn ps_filtering() {
        let out = "UID  PID  PPID  C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:00 /sbin/init splash\nroot 42 1 0 10:00 ? 00:00:00 sleep 100\n";
        let (t, rows) = parse_ps(out, &[42]).unwrap();
        assert_eq!(t.len(), 8);
        assert_eq!(rows, vec![vec!["root", "42", "1", "0", "10:00", "?", "00:00:00", "sleep 100"]]);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10m"), Some(10 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
    }
}
