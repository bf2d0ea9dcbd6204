//! Harness for the root integration tests: each test starts its own daemon
//! on a temporary data root and socket, drives it through the berth CLI, the
//! Engine API and the real docker CLI, and removes everything it made.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub fn is_root() -> bool {
    // SAFETY: no failure modes.
    unsafe { libc::geteuid() == 0 }
}

/// Skips the calling test (returns from it) unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !common::is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

pub fn berth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_berth"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
}

/// Test image archives, built once per machine by the project's fixture
/// scripts and cached (the scripts reuse their outputs).
pub fn fixture(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let dir = PathBuf::from(
            std::env::var("BERTH_FIXTURES").unwrap_or_else(|_| "/var/cache/berth-fixtures/images".into()),
        );
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let status = Command::new("bash")
            .arg(repo_root().join("scripts/fixtures/all.sh"))
            .arg(&dir)
            .status()
            .expect("running fixture scripts");
        assert!(status.success(), "fixture scripts failed");
        dir
    });
    let p = dir.join(name);
    assert!(p.exists(), "fixture {} missing", p.display());
    p
}

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub socket: PathBuf,
    /// The default bridge of this daemon, unique per test daemon (several
    /// daemons run side by side).
    pub bridge: String,
    child: Option<Child>,
    /// Extra `berth daemon` flags (`start_with`).
    pub extra_args: Vec<String>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Self::start_with(&[])
    }

    /// A daemon started with extra flags (`--registry-mirror …`).
    pub fn start_with(args: &[&str]) -> Daemon {
        let dir = tempfile::Builder::new().prefix("berth-test-").tempdir_in("/tmp").expect("tempdir");
        let root = dir.path().join("root");
        let socket = dir.path().join("berth.sock");
        let extra_args = args.iter().map(|a| a.to_string()).collect();
        let tag = dir.path().file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let bridge = format!("bt{}", &sha256_hex(format!("{tag}{}", std::process::id()).as_bytes())[..10]);
        let mut d = Daemon { dir, root, socket, bridge, child: None, extra_args };
        d.spawn();
        d
    }

    /// Starts (again) the daemon process on this data root and socket.
    pub fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .expect("log");
        let child = Command::new(berth_bin())
            .args(["daemon", "--data-root"])
            .arg(&self.root)
            .arg("-H")
            .arg(self.host())
            .arg("--log-level")
            .arg("debug")
            // Own bridge, subnets away from Docker's 172.17/16 defaults.
            .args(["--bridge", &self.bridge, "--default-address-pool", "base=10.199.0.0/16,size=24"])
            // BERTH_TEST_RUNTIME=runc runs every container test through runc.
            .args(
                std::env::var("BERTH_TEST_RUNTIME")
                    .ok()
                    .filter(|r| !r.is_empty())
                    .map(|r| vec!["--default-runtime".to_string(), r])
                    .unwrap_or_default(),
            )
            .args(&self.extra_args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn daemon");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    panic!("daemon exited early ({st}): {}", self.log());
                }
            }
            assert!(Instant::now() < deadline, "daemon did not start: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Stops the daemon with `signal` and waits for it.
    pub fn stop_with(&mut self, signal: i32) -> Option<std::process::ExitStatus> {
        let mut c = self.child.take()?;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(c.id() as i32, signal) };
        c.wait().ok()
    }

    /// `berth -H <socket> args…`
    pub fn berth(&self, args: &[&str]) -> Output {
        self.berth_stdin(args, None)
    }

    pub fn berth_stdin(&self, args: &[&str], stdin: Option<&Path>) -> Output {
        let mut c = Command::new(berth_bin());
        c.arg("-H").arg(self.host()).args(args);
        c.env_remove("DOCKER_HOST").env_remove("BERTH_HOST");
        // Logins go to the test's own config dir, never the user's ~/.docker.
        c.env("DOCKER_CONFIG", self.dir.path().join("docker-config"));
        c.stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).expect("stdin file")),
            None => Stdio::null(),
        });
        c.output().expect("run berth")
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Asserts failure and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.berth(args);
        assert!(!o.status.success(), "berth {args:?} should have failed: {}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// The real docker CLI against this daemon, if installed.
    pub fn docker(&self, args: &[&str]) -> Option<Output> {
        let docker = which("docker")?;
        let home = self.dir.path().join("docker-config");
        let _ = std::fs::create_dir_all(&home);
        Some(
            Command::new(docker)
                .args(args)
                .env("DOCKER_HOST", self.host())
                .env("DOCKER_CONFIG", &home)
                .env("DOCKER_BUILDKIT", "0")
                .stdin(Stdio::null())
                .output()
                .expect("run docker"),
        )
    }

    /// A raw HTTP request over the socket; returns (status, headers, body).
    pub fn http(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, String, Vec<u8>) {
        self.try_http(method, path, body).expect("HTTP request to the daemon")
    }

    /// [`Daemon::http`] without panicking (for cleanup in `Drop`).
    pub fn try_http(&self, method: &str, path: &str, body: Option<&[u8]>) -> Option<(u16, String, Vec<u8>)> {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(&self.socket).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(60))).ok();
        let body = body.unwrap_or(b"");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: berth\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(req.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).ok()?;
        let split = resp.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&resp[..split]).into_owned();
        let mut body = resp[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        Some((status, head, body))
    }

    pub fn http_json(&self, method: &str, path: &str, body: Option<&[u8]>) -> (u16, serde_json::Value) {
        let (st, _, b) = self.http(method, path, body);
        let v = serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null);
        (st, v)
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[i + 2 + n + 2..];
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // Containers outlive their daemon by design: remove them first, so a
        // failed test leaves no processes, mounts or cgroups behind.
        if self.child.is_some() {
            if let Some((200, _, body)) = self.try_http("GET", "/containers/json?all=1", None) {
                let list: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                for c in list.as_array().cloned().unwrap_or_default() {
                    if let Some(id) = c["Id"].as_str() {
                        let _ = self.try_http("DELETE", &format!("/containers/{id}?force=1"), None);
                    }
                }
            }
        }
        self.stop_with(libc::SIGTERM);
        // Anything still mounted under the test's root goes before the dir does.
        if let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") {
            let prefix = self.dir.path().display().to_string();
            let mut mounts: Vec<&str> =
                m.lines().filter_map(|l| l.split_whitespace().nth(4)).filter(|p| p.starts_with(&prefix)).collect();
            mounts.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in mounts {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Reads a docker-archive's first image config and returns its sha256 (the image ID).
pub fn archive_image_id(path: &Path) -> String {
    use std::io::Read;
    let mut files = std::collections::HashMap::new();
    let mut ar = tar::Archive::new(std::fs::File::open(path).expect("archive"));
    for e in ar.entries().expect("entries") {
        let mut e = e.expect("entry");
        let p = e.path().expect("path").to_string_lossy().into_owned();
        if p == "manifest.json"
            || p.ends_with(".json")
            || (p.starts_with("blobs/") && e.header().size().unwrap_or(0) < 1 << 20)
        {
            let mut b = Vec::new();
            e.read_to_end(&mut b).expect("read");
            files.insert(p, b);
        }
    }
    let m: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    let cfg = m[0]["Config"].as_str().expect("Config");
    format!("sha256:{}", sha256_hex(&files[cfg]))
}

/// A test daemon with the busybox fixture loaded, when running as root with
/// the docker CLI installed; `None` (the test skips) otherwise.
pub fn daemon_with_busybox() -> Option<Daemon> {
    if !is_root() {
        eprintln!("skipped: needs root");
        return None;
    }
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    which("docker")?;
    Some(d)
}

/// `docker …` against the test daemon; returns (exit code, stdout, stderr).
pub fn docker(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let o = d.docker(args).expect("docker CLI");
    (o.status.code().unwrap_or(-1), stdout(&o), stderr(&o))
}

pub fn docker_ok(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = docker(d, args);
    assert_eq!(code, 0, "docker {args:?}: {err}");
    out
}

pub fn docker_fails(d: &Daemon, args: &[&str]) -> String {
    let (code, out, err) = docker(d, args);
    assert_ne!(code, 0, "docker {args:?} should fail: {out}");
    err
}

/// `GET /containers/{name}/json`, which must succeed.
pub fn inspect(d: &Daemon, name: &str) -> serde_json::Value {
    let (st, v) = d.http_json("GET", &format!("/containers/{name}/json"), None);
    assert_eq!(st, 200, "inspect {name}: {v}");
    v
}

/// Polls `f` every 50 ms for up to 20 s.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
