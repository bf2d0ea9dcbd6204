//! Test fixtures: a busybox OCI bundle, the shim binary, and cleanup that
//! runs even when a test fails.

#![allow(dead_code)]

use berth_shim::protocol::{read_frame, StreamId};
use berth_shim::SpawnOptions;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Env {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub bundle: PathBuf,
    pub state: PathBuf,
    pub runtime_root: PathBuf,
    pub log: PathBuf,
    pub runtime: PathBuf,
    pub shim: PathBuf,
}

fn find_runtime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_TEST_RUNTIME") {
        return Some(PathBuf::from(p));
    }
    ["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn find_shim() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_SHIM_BIN") {
        return Some(PathBuf::from(p));
    }
    // target/<profile>/deps/<test> → target/<profile>/examples/berth-shim
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("examples").join("berth-shim");
    p.exists().then_some(p)
}

/// True for an ELF file without a program interpreter (statically linked).
fn is_static_elf(path: &Path) -> bool {
    let Ok(b) = std::fs::read(path) else {
        return false;
    };
    if b.len() < 64 || &b[..4] != b"\x7fELF" || b[4] != 2 {
        return false;
    }
    let u16at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16at(54), u16at(56));
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) != 3
    })
}

/// A fresh bundle running `args`, or `None` (with a note) when the machine
/// cannot run containers.
pub fn setup(name: &str, args: &[&str], tty: bool) -> Option<Env> {
    setup_with(name, args, tty, |_| {})
}

/// Like [`setup`], with a chance to edit config.json.
pub fn setup_with(name: &str, args: &[&str], tty: bool, edit: impl FnOnce(&mut serde_json::Value)) -> Option<Env> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: skipping {name}: needs root");
        return None;
    }
    let Some(runtime) = find_runtime() else {
        eprintln!("note: skipping {name}: runc not found (apt-get install runc, or set BERTH_TEST_RUNTIME)");
        return None;
    };
    let busybox = PathBuf::from("/bin/busybox");
    if !is_static_elf(&busybox) {
        eprintln!("note: skipping {name}: no static /bin/busybox (apt-get install busybox-static)");
        return None;
    }
    let Some(shim) = find_shim() else {
        eprintln!("note: skipping {name}: shim binary not built (cargo build -p berth-shim --examples)");
        return None;
    };
    let dir = tempfile::Builder::new().prefix("bshim").tempdir_in("/tmp").unwrap();
    let id = format!("berth-shimtest-{name}-{}", std::process::id());
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "proc", "dev", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(&busybox, rootfs.join("bin/busybox")).unwrap();
    let list = Command::new(&busybox).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.contains('/') {
            let _ = symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    let mut config = config_json(&id, args, tty);
    edit(&mut config);
    std::fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    let env = Env {
        state: dir.path().join("state"),
        runtime_root: dir.path().join("runc"),
        log: dir.path().join("ctr.log"),
        bundle,
        id,
        runtime,
        shim,
        dir,
    };
    Some(env)
}

fn caps() -> serde_json::Value {
    let set = serde_json::json!([
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
        "CAP_AUDIT_WRITE"
    ]);
    serde_json::json!({ "bounding": set, "effective": set, "permitted": set })
}

pub fn process_json(args: &[&str], tty: bool) -> serde_json::Value {
    serde_json::json!({
        "terminal": tty,
        "user": { "uid": 0, "gid": 0 },
        "args": args,
        "env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin", "TERM=xterm", "HOME=/root"],
        "cwd": "/",
        "capabilities": caps(),
        "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
        "noNewPrivileges": true
    })
}

fn config_json(id: &str, args: &[&str], tty: bool) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": process_json(args, tty),
        "root": { "path": "rootfs", "readonly": false },
        "hostname": "shimtest",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "cgroupsPath": format!("/{id}"),
            "resources": { "devices": [{ "allow": false, "access": "rwm" }] },
            "namespaces": [
                { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }
            ],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

impl Env {
    pub fn opts(&self) -> SpawnOptions {
        let mut o = SpawnOptions::new(&self.shim, &self.id, &self.bundle, &self.state, &self.runtime);
        o.runtime_root = Some(self.runtime_root.clone());
        o.log_path = Some(self.log.clone());
        o.shim_log = Some(self.dir.path().join("shim.stderr"));
        o.timeout = Duration::from_secs(30);
        o
    }

    pub fn shim_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.state.join("shim.pid")).ok()?.trim().parse().ok()
    }

    /// Log entries as (log, stream) pairs.
    pub fn log_entries(&self, path: &Path) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|l| {
                let v: serde_json::Value =
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}"));
                let time = v["time"].as_str().unwrap();
                assert!(time.ends_with('Z') && time.len() == 30, "time {time}");
                (v["log"].as_str().unwrap().to_string(), v["stream"].as_str().unwrap().to_string())
            })
            .collect()
    }

    fn cgroup_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
            for e in entries.flatten() {
                dirs.push(e.path().join(&self.id));
            }
        }
        dirs.push(PathBuf::from("/sys/fs/cgroup").join(&self.id));
        dirs
    }

    /// Everything the shim and runtime may leave behind is gone.
    pub fn assert_clean(&self, pid: i32) {
        wait_gone(pid);
        let left: Vec<_> =
            std::fs::read_dir(&self.state).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "state dir not empty: {left:?}");
        assert!(!self.runtime_root.join(&self.id).exists(), "runtime state left behind");
        for d in self.cgroup_dirs() {
            assert!(!d.exists(), "cgroup left behind: {}", d.display());
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(self.bundle.to_str().unwrap()), "mount left behind");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid() {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = Command::new(&self.runtime)
            .arg("--root")
            .arg(&self.runtime_root)
            .args(["delete", "--force", &self.id])
            .stderr(std::process::Stdio::null())
            .status();
        for d in self.cgroup_dirs() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

pub fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0); look at its state instead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

pub fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads multiplexed frames until end of stream: (stdout, stderr).
pub fn read_frames<R: Read>(r: &mut R) -> (Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some((stream, payload)) = read_frame(r).unwrap() {
        match stream {
            StreamId::Stdout => out.extend(payload),
            StreamId::Stderr => err.extend(payload),
            StreamId::Stdin => panic!("stdin frame from the shim"),
        }
    }
    (out, err)
}

/// Reads one frame, expecting a given stream.
pub fn read_one_frame<R: Read>(r: &mut R) -> (StreamId, Vec<u8>) {
    read_frame(r).unwrap().expect("stream ended early")
}

pub fn status_field(pid: i32, field: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find(|l| l.starts_with(field)).map(|l| l[field.len()..].trim().to_string())
}
