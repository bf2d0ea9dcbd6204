//! One-shot tasks: a process run in a root filesystem the caller prepared,
//! through the same OCI spec, shim and runtime as a container, but without a
//! container record. The builder runs `RUN` steps this way: as with
//! BuildKit's executor, build steps never show in `ps` and leave nothing
//! behind when they end.

use std::io::Read;
use std::path::{Path, PathBuf};

use berth_shim::{ShimClient, SpawnOptions};
use serde_json::{json, Map, Value};

use super::{random_id, Manager};
use crate::{netns, spec, Error, Result};

/// Where a task's network comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TaskNetwork {
    /// A new network namespace with only `lo` up (the builder's default on
    /// a daemon without bridge networking, and `RUN --network=none`).
    #[default]
    Isolated,
    /// The host's network namespace (`--network host`).
    Host,
    /// An existing network namespace (a path such as `/run/netns/x`).
    Join(PathBuf),
    /// The default `bridge` network, as Docker's builder gives `RUN` steps:
    /// an address, outbound NAT and the host's resolvers. Isolated when the
    /// daemon manages no networks.
    Bridge,
}

/// What to run.
pub struct TaskSpec<'a> {
    /// The task's ID (64 hex digits); a random one when empty.
    pub id: String,
    /// Mounts assembling the root filesystem (e.g. an active snapshot).
    pub rootfs: &'a [berth_snapshot::Mount],
    /// The container config the process is made from (`Env`, `User`,
    /// `WorkingDir`, …), as in an image config.
    pub config: &'a Map<String, Value>,
    /// The full argument vector.
    pub args: &'a [String],
    /// Extra OCI mounts (bind, tmpfs) added after Docker's defaults.
    pub mounts: Vec<Value>,
    pub network: TaskNetwork,
    /// `host:ip` entries added to /etc/hosts.
    pub extra_hosts: &'a [String],
    /// Files written into the bundle and bind-mounted read-only at the given
    /// container path (heredoc scripts).
    pub files: Vec<(String, Vec<u8>, u32)>,
}

/// Output of a task: `(stream, bytes)` where stream is 1 (stdout) or 2 (stderr).
pub type TaskOutput<'a> = &'a mut dyn FnMut(u8, &[u8]);

impl Manager {
    /// Runs a task to completion and returns its exit code (128+signal for
    /// a signal death). Blocking: call from a blocking thread. Whatever
    /// happens, the bundle, the mount of the root filesystem, the shim and
    /// the runtime's state are gone when it returns. `cancel` is polled while
    /// the task runs; when it turns true the task is killed.
    pub fn run_task(
        &self,
        t: &TaskSpec<'_>,
        output: TaskOutput<'_>,
        cancel: &dyn Fn() -> bool,
    ) -> Result<(String, i32)> {
        let id = if t.id.len() >= 16 { t.id.clone() } else { random_id() };
        let bundle = self.cfg.data_root.join("builder").join("tasks").join(&id[..16]);
        let state = self.state_dir(&id);
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).map_err(Error::io("creating the task bundle"))?;
        let mut attached = false;
        let res = match (&t.network, self.net().cloned()) {
            (TaskNetwork::Bridge, Some(net)) => {
                // Recorded like a container's endpoint, so a daemon killed
                // mid-step releases it at its next start (nothing runs it).
                let hostname = id[..12].to_string();
                let res = net.initial_networks("bridge", None).and_then(|networks| {
                    net.attach(&berth_network::ContainerNet {
                        id: &id,
                        name: &format!("build-{hostname}"),
                        hostname: &hostname,
                        mode: "bridge",
                        networks: &networks,
                        config: t.config,
                        host_config: &Map::new(),
                    })
                });
                match res {
                    Ok(a) => {
                        attached = true;
                        let joined = TaskSpec {
                            id: t.id.clone(),
                            rootfs: t.rootfs,
                            config: t.config,
                            args: t.args,
                            mounts: t.mounts.clone(),
                            network: TaskNetwork::Join(a.netns.clone()),
                            extra_hosts: t.extra_hosts,
                            files: t.files.clone(),
                        };
                        self.run_task_in(&id, &bundle, &rootfs, &state, &joined, output, cancel)
                    }
                    Err(e) => Err(Error::Network(e)),
                }
            }
            _ => self.run_task_in(&id, &bundle, &rootfs, &state, t, output, cancel),
        };
        if attached {
            if let Some(net) = self.net() {
                if let Err(e) = net.detach(&id) {
                    tracing::warn!("releasing a build step's network: {e}");
                }
            }
        }
        let _ = berth_snapshot::unmount(&rootfs);
        let _ = std::fs::remove_dir_all(&bundle);
        let _ = std::fs::remove_dir_all(&state);
        res.map(|code| (id, code))
    }

    #[allow(clippy::too_many_arguments)]
    fn run_task_in(
        &self,
        id: &str,
        bundle: &Path,
        rootfs: &Path,
        state: &Path,
        t: &TaskSpec<'_>,
        output: TaskOutput<'_>,
        cancel: &dyn Fn() -> bool,
    ) -> Result<i32> {
        berth_snapshot::mount_all(t.rootfs, rootfs)?;
        let hostname = id[..12].to_string();
        std::fs::write(bundle.join("hostname"), format!("{hostname}\n")).map_err(Error::io("writing hostname"))?;
        let mut hosts = match t.network {
            TaskNetwork::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            _ => "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n".to_string(),
        };
        for h in t.extra_hosts {
            if let Some((name, ip)) = h.split_once(':') {
                hosts.push_str(&format!("{ip}\t{name}\n"));
            }
        }
        std::fs::write(bundle.join("hosts"), hosts).map_err(Error::io("writing hosts"))?;
        let mut resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        if t.network != TaskNetwork::Host {
            // Loopback resolvers are unreachable from another namespace (as
            // for containers: Docker drops them from the copy).
            resolv = resolv
                .lines()
                .filter(|l| {
                    let ns = l.trim().strip_prefix("nameserver").map(str::trim);
                    !ns.is_some_and(|ip| ip.starts_with("127.") || ip == "::1")
                })
                .map(|l| format!("{l}\n"))
                .collect();
            if !resolv.lines().any(|l| l.trim_start().starts_with("nameserver")) {
                resolv.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
            }
        }
        std::fs::write(bundle.join("resolv.conf"), resolv).map_err(Error::io("writing resolv.conf"))?;
        let mut host_config = Map::new();
        host_config.insert("NetworkMode".into(), json!(if t.network == TaskNetwork::Host { "host" } else { "none" }));
        let (path, args) = t.args.split_first().ok_or_else(|| Error::InvalidArgument("no command given".into()))?;
        let mut s = spec::build(&spec::SpecInputs {
            id,
            rootfs,
            config: t.config,
            host_config: &host_config,
            path,
            args,
            hostname: &hostname,
            hosts_path: &bundle.join("hosts"),
            hostname_path: &bundle.join("hostname"),
            resolv_path: &bundle.join("resolv.conf"),
            netns: match &t.network {
                TaskNetwork::Host => Some(None),
                TaskNetwork::Join(p) => Some(Some(p.display().to_string())),
                TaskNetwork::Isolated | TaskNetwork::Bridge => None,
            },
            cgroup_parent: &self.cfg.cgroup_parent,
            init_path: None,
            user_mounts: &[],
        })?;
        let mut mounts = t.mounts.clone();
        for (i, (target, data, mode)) in t.files.iter().enumerate() {
            use std::os::unix::fs::PermissionsExt;
            let p = bundle.join(format!("file-{i}"));
            std::fs::write(&p, data).map_err(Error::io("writing a task file"))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode))
                .map_err(Error::io("writing a task file"))?;
            mounts.push(json!({"destination": target, "type": "bind", "source": p, "options": ["rbind", "ro"]}));
        }
        if let Some(Value::Array(m)) = s.get_mut("mounts") {
            m.extend(mounts);
        }
        let bytes = serde_json::to_vec(&s).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(bundle.join("config.json"), bytes).map_err(Error::io("writing config.json"))?;

        let runtime = self
            .cfg
            .runtimes
            .get(&self.cfg.default_runtime)
            .cloned()
            .ok_or_else(|| Error::InvalidArgument(format!("unknown runtime {}", self.cfg.default_runtime)))?;
        let mut opts = SpawnOptions::new(&self.cfg.shim_bin, id.to_string(), bundle, state, runtime);
        opts.runtime_root = Some(self.runtime_root(&self.cfg.default_runtime));
        opts.no_start = true;
        opts.no_delete = true;
        opts.shim_log = Some(bundle.join("shim.log"));
        let spawned = berth_shim::spawn(&opts)?;
        let res = self.drive_task(state, spawned.container_pid, &t.network, output, cancel);
        // Whatever happened, the shim runs the runtime's delete and quits.
        if let Ok(mut cl) = ShimClient::connect(state) {
            if res.is_err() {
                let _ = cl.kill(9, true);
                if let Ok(mut w) = ShimClient::connect(state) {
                    let _ = w.wait();
                }
            }
            let _ = cl.shutdown();
        }
        self.remove_task_cgroups(id);
        res
    }

    fn drive_task(
        &self,
        state: &Path,
        pid: i32,
        network: &TaskNetwork,
        output: TaskOutput<'_>,
        cancel: &dyn Fn() -> bool,
    ) -> Result<i32> {
        if *network == TaskNetwork::Isolated {
            netns::loopback_up(pid).map_err(Error::io("bringing up lo"))?;
        }
        let stream = ShimClient::connect(state)?.attach(false, true, true)?;
        let mut monitor = ShimClient::connect(state)?;
        ShimClient::connect(state)?.start()?;
        let mut sock = stream.stream;
        let _ = sock.set_read_timeout(Some(std::time::Duration::from_millis(200)));
        let mut buf = vec![0u8; 32 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut killed = false;
        loop {
            match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                    // Docker's multiplexed framing: [stream, 0, 0, 0, len u32 BE] payload.
                    while pending.len() >= 8 {
                        let len = u32::from_be_bytes([pending[4], pending[5], pending[6], pending[7]]) as usize;
                        if pending.len() < 8 + len {
                            break;
                        }
                        output(pending[0], &pending[8..8 + len]);
                        pending.drain(..8 + len);
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
            if !killed && cancel() {
                killed = true;
                let _ = ShimClient::connect(state).and_then(|mut c| c.kill(9, true));
            }
        }
        let rec = monitor.wait()?;
        if killed {
            return Err(Error::Internal("the build was cancelled".into()));
        }
        Ok(rec.exit_code)
    }

    /// The runtime's delete runs as soon as the task's init has exited;
    /// its cgroup can still be busy for a moment while the kernel finishes
    /// the exit, and the rmdir then fails (runc retries for the same
    /// reason). Whatever is left is removed here, retrying briefly.
    fn remove_task_cgroups(&self, id: &str) {
        let parent = self.cfg.cgroup_parent.trim_start_matches('/');
        let dirs: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .map(|rd| rd.flatten().map(|e| e.path().join(parent).join(id)).collect())
            .unwrap_or_default();
        for _ in 0..50 {
            let left: Vec<&PathBuf> = dirs.iter().filter(|d| d.exists()).collect();
            if left.is_empty() {
                return;
            }
            for d in left {
                let _ = std::fs::remove_dir(d);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        tracing::warn!("cgroup of build step {} could not be removed", &id[..12.min(id.len())]);
    }

    /// The data root (the builder keeps its scratch directories beside the
    /// other daemon state).
    pub fn data_root(&self) -> PathBuf {
        self.cfg.data_root.clone()
    }
}
