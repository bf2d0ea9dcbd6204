//! Shared helpers for the root integration tests: a busybox OCI bundle, the
//! runtime binary, and a guard that kills and deletes a container however a
//! test ends.

#![allow(dead_code)]

use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Parent cgroup of every test container (`cgroupsPath` is
/// `/berth-rt-test/<id>`, cgroupfs style like Docker's `/docker/<id>`).
pub const CGROUP_PARENT: &str = "berth-rt-test";

/// Why the tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox missing (apt-get install busybox-static)".into());
    }
    if !runtime_bin().exists() {
        return Some(format!("runtime binary {} missing", runtime_bin().display()));
    }
    None
}

/// Returns early from a test, with a note, when it cannot run here.
#[macro_export]
macro_rules! require_root {
    () => {
        if let Some(why) = common::skip_reason() {
            eprintln!("skipping: {why}");
            return;
        }
        common::become_subreaper();
    };
}

/// The runtime under test: `$BERTH_RUNTIME_BIN` (e.g. the installed
/// `berth-runtime`, or runc for comparison) or this package's binary.
pub fn runtime_bin() -> PathBuf {
    match std::env::var_os("BERTH_RUNTIME_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime-test")),
    }
}

/// Container inits are re-parented to us when `create` exits, as they are to
/// the shim; being a subreaper lets the tests collect their exit codes.
pub fn become_subreaper() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        sweep_stale();
    });
}

/// Removes containers of earlier test runs that were killed before their
/// guards ran: ids end in the test process' pid, so a cgroup whose owner
/// process is gone is stale. Its processes are killed and the cgroup removed.
fn sweep_stale() {
    let mut stale = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let parent = e.path().join(CGROUP_PARENT);
            let Ok(children) = std::fs::read_dir(&parent) else {
                continue;
            };
            for c in children.flatten() {
                let name = c.file_name().to_string_lossy().into_owned();
                let owner = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
                if c.path().is_dir() && owner.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                    stale.push(c.path());
                }
            }
        }
    }
    for dir in &stale {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
            // SAFETY: kill(2) of a process in a stale test cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    for dir in &stale {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Docker's default capability set.
pub const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A bundle in a temp dir: busybox rootfs and a Docker-like config.json.
pub struct Bundle {
    pub dir: tempfile::TempDir,
    pub id: String,
}

impl Bundle {
    /// A bundle for container `id` running `args`.
    pub fn new(id: &str, args: &[&str]) -> Bundle {
        let dir = tempfile::tempdir().expect("tempdir");
        let rootfs = dir.path().join("rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc"] {
            std::fs::create_dir_all(rootfs.join(d)).expect("mkdir");
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).expect("copy busybox");
        let list = Command::new("/bin/busybox").arg("--list").output().expect("busybox --list");
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" && !applet.is_empty() {
                let _ = symlink("busybox", rootfs.join("bin").join(applet));
            }
        }
        std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
        let b = Bundle { dir, id: id.to_owned() };
        b.write_config(&config(id, args));
        b
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Rewrites config.json with `f` applied.
    pub fn edit_config(&self, f: impl FnOnce(&mut Value)) {
        let path = self.dir.path().join("config.json");
        let mut v: Value = serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("json");
        f(&mut v);
        self.write_config(&v);
    }

    fn write_config(&self, v: &Value) {
        std::fs::write(self.dir.path().join("config.json"), serde_json::to_vec_pretty(v).expect("encode"))
            .expect("write config");
    }
}

/// A config.json like the one Docker generates for `docker run busybox`.
pub fn config(id: &str, args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                format!("HOSTNAME={id}")
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DOCKER_CAPS,
                "effective": DOCKER_CAPS,
                "permitted": DOCKER_CAPS
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "oomScoreAdj": 0
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": id,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["ro", "nosuid", "noexec", "nodev"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}
        ],
        "linux": {
            "cgroupsPath": format!("/{CGROUP_PARENT}/{id}"),
            "resources": {
                "devices": [
                    {"allow": false, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 136, "access": "rwm"},
                    {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"}
                ],
                "memory": {"limit": 134217728},
                "pids": {"limit": 200},
                "cpu": {"shares": 512}
            },
            "namespaces": [
                {"type": "mount"}, {"type": "network"}, {"type": "uts"},
                {"type": "pid"}, {"type": "ipc"}
            ],
            "maskedPaths": [
                "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// A unique container id for a test.
pub fn unique_id(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// One container under test with its own state root and log file. Dropping
/// it kills and deletes the container and removes leftovers, so a failing
/// test does not leave processes or cgroups behind.
pub struct Ctr {
    pub id: String,
    pub root: tempfile::TempDir,
    pub log: PathBuf,
    pub bundle: Bundle,
}

impl Ctr {
    pub fn new(name: &str, args: &[&str]) -> Ctr {
        let id = unique_id(name);
        let root = tempfile::tempdir().expect("root tempdir");
        let log = root.path().join("runtime-log.json");
        let bundle = Bundle::new(&id, args);
        Ctr { id, root, log, bundle }
    }

    /// A runtime command with the global flags the shim passes.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runtime_bin());
        c.arg("--root")
            .arg(self.root.path().join("state"))
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg("json")
            .args(args);
        c
    }

    /// Runs a runtime command to completion (stdin/stdout/stderr captured).
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().expect("run runtime")
    }

    /// `create` with the container's stdio on fresh pipes; returns the
    /// create output and the container's stdout/stderr readers.
    pub fn create_piped(&self, extra: &[&str]) -> (Output, Child) {
        let mut args = vec!["create", "--bundle"];
        let bundle = self.bundle.path().to_string_lossy().into_owned();
        args.push(&bundle);
        args.extend_from_slice(extra);
        args.push(&self.id);
        let mut child = self
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn create");
        let status = child.wait().expect("wait create");
        let out = Output { status, stdout: Vec::new(), stderr: Vec::new() };
        (out, child)
    }

    pub fn state(&self) -> Option<Value> {
        let out = self.run(&["state", &self.id]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn status(&self) -> String {
        self.state().and_then(|s| s["status"].as_str().map(str::to_owned)).unwrap_or_else(|| "gone".to_owned())
    }

    pub fn pid(&self) -> i32 {
        self.state().and_then(|s| s["pid"].as_i64()).map(|p| p as i32).unwrap_or(0)
    }

    /// Waits (bounded) until `state` reports `status`.
    pub fn wait_status(&self, status: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.status() == status {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// The cgroup directories of this container that exist now.
    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_dirs(&self.id)
    }

    /// The last error line of the JSON log.
    pub fn last_log_error(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        text.lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["level"] == "error")
            .and_then(|v| v["msg"].as_str().map(str::to_owned))
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = self.run(&["kill", "--all", &self.id, "KILL"]);
        let _ = self.run(&["delete", "--force", &self.id]);
        for d in cgroup_dirs(&self.id) {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// `/sys/fs/cgroup/<hierarchy>/berth-rt-test/<id>` (v1) or
/// `/sys/fs/cgroup/berth-rt-test/<id>` (v2) that exist.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let base = Path::new("/sys/fs/cgroup");
    let direct = base.join(CGROUP_PARENT).join(id);
    if direct.exists() {
        out.push(direct);
    }
    if let Ok(entries) = std::fs::read_dir(base) {
        for e in entries.flatten() {
            let p = e.path().join(CGROUP_PARENT).join(id);
            if p.exists() {
                out.push(p);
            }
        }
    }
    out
}

/// The v1 hierarchy directory of `controller` for a container, if mounted.
pub fn v1_cgroup(controller: &str, id: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(controller).join(CGROUP_PARENT).join(id)
}

/// Reads a child pipe to the end.
pub fn read_all(r: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}

/// Waits for a (re-parented) container process and returns its exit code,
/// 128+signal when killed.
pub fn wait_exit(pid: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("waitpid {pid}: {e}"),
        }
    }
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
