//! Starting a shim from the daemon: fork+exec the shim binary and block
//! until it reports the container running (or why it is not).

use crate::error::{Error, Result};
use crate::json::{self, Value};
use crate::protocol::SHIM_PID_FILE;
use crate::sys;
use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to start one container's shim. Build with [`SpawnOptions::new`] and
/// set the optional fields.
#[derive(Debug, Clone)]
pub struct SpawnOptions {
    /// The `berth-shim` executable.
    pub shim_path: PathBuf,
    pub id: String,
    /// OCI bundle directory (config.json + rootfs).
    pub bundle: PathBuf,
    /// Per-container directory for `shim.sock`, `exit.json` and scratch files;
    /// created (mode 0700) if missing. Keep it short: the socket path must fit
    /// in 107 bytes.
    pub state_dir: PathBuf,
    /// runc-compatible runtime executable.
    pub runtime: PathBuf,
    /// `--root` of the runtime; its default when `None`.
    pub runtime_root: Option<PathBuf>,
    /// Extra global runtime flags, e.g. `--systemd-cgroup`.
    pub runtime_args: Vec<OsString>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// json-file log; output is drained and discarded when `None`.
    pub log_path: Option<PathBuf>,
    /// Rotation size in bytes (0: never rotate); the shim's default when `None`.
    pub log_max_size: Option<u64>,
    /// Files kept, the current one included; the shim's default when `None`.
    pub log_max_files: Option<u32>,
    /// Stop after `runtime create` and wait for a `start` request, so that
    /// attach and wait can be set up before the first byte of output.
    pub no_start: bool,
    /// Keep the runtime's state after exit until `shutdown`.
    pub no_delete: bool,
    /// File the shim's own diagnostics are appended to (its stderr).
    pub shim_log: Option<PathBuf>,
    /// How long to wait for the report; the shim is killed after that.
    pub timeout: Duration,
}

impl SpawnOptions {
    pub fn new(
        shim_path: impl Into<PathBuf>,
        id: impl Into<String>,
        bundle: impl Into<PathBuf>,
        state_dir: impl Into<PathBuf>,
        runtime: impl Into<PathBuf>,
    ) -> Self {
        SpawnOptions {
            shim_path: shim_path.into(),
            id: id.into(),
            bundle: bundle.into(),
            state_dir: state_dir.into(),
            runtime: runtime.into(),
            runtime_root: None,
            runtime_args: Vec::new(),
            tty: false,
            stdin: false,
            stdin_once: false,
            log_path: None,
            log_max_size: None,
            log_max_files: None,
            no_start: false,
            no_delete: false,
            shim_log: None,
            timeout: Duration::from_secs(60),
        }
    }

    /// The shim's command line (without the ready descriptor).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        let mut pair = |flag: &str, v: OsString| {
            a.push(flag.into());
            a.push(v);
        };
        pair("--id", self.id.clone().into());
        pair("--bundle", self.bundle.clone().into());
        pair("--state-dir", self.state_dir.clone().into());
        pair("--runtime", self.runtime.clone().into());
        if let Some(r) = &self.runtime_root {
            pair("--runtime-root", r.clone().into());
        }
        for r in &self.runtime_args {
            pair("--runtime-arg", r.clone());
        }
        if let Some(l) = &self.log_path {
            pair("--log-path", l.clone().into());
        }
        if let Some(n) = self.log_max_size {
            pair("--log-max-size", n.to_string().into());
        }
        if let Some(n) = self.log_max_files {
            pair("--log-max-files", n.to_string().into());
        }
        for (on, flag) in [
            (self.tty, "--tty"),
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
            (self.no_start, "--no-start"),
            (self.no_delete, "--no-delete"),
        ] {
            if on {
                a.push(flag.into());
            }
        }
        a
    }
}

/// What a successful [`spawn`] learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnResult {
    pub shim_pid: i32,
    /// The container's init pid on the host.
    pub container_pid: i32,
}

/// The descriptor number the shim's report arrives on in the child.
const READY_FD: i32 = 3;

/// Starts the shim and blocks until it reports. Blocking: from tokio, call
/// it inside `spawn_blocking`.
///
/// Safe to call from a multi-threaded process: the only work between fork
/// and exec is one dup2, and the pipe is close-on-exec everywhere else, so
/// concurrent spawns do not leak each other's report pipes.
///
/// On a runtime failure the error is [`Error::Runtime`] carrying the
/// runtime's own message; [`crate::protocol::classify_start_error`] maps it
/// to Docker's exit code (127 for a missing executable).
pub fn spawn(opts: &SpawnOptions) -> Result<SpawnResult> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&opts.state_dir)
        .map_err(|e| Error::io(format!("create {}", opts.state_dir.display()), e))?;
    let (rd, wr) = sys::pipe().map_err(|e| Error::errno("pipe", e))?;
    let stderr = match &opts.shim_log {
        Some(p) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::io(format!("open {}", p.display()), e))?,
        ),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(&opts.shim_path);
    cmd.args(opts.args()).arg("--ready-fd").arg(READY_FD.to_string());
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
    let wr_fd = wr.as_raw_fd();
    // SAFETY: the closure only makes async-signal-safe calls (sigprocmask,
    // signal, dup2, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            sys::reset_signals_for_exec()?;
            if wr_fd == READY_FD {
                sys::set_cloexec(wr_fd, false).map_err(std::io::Error::from)?;
            } else if libc::dup2(wr_fd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| Error::io(format!("exec {}", opts.shim_path.display()), e))?;
    drop(cmd);
    // Only the shim may hold the write end now, or end-of-file never comes.
    drop(wr);

    let deadline = Instant::now() + opts.timeout;
    let mut report = Vec::new();
    if let Err(e) = read_report(&rd, &mut report, deadline) {
        kill_shim(opts);
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    // The first process exits right after forking the real shim, so this
    // does not block; reaping it is all the daemon ever has to do.
    let status = child.wait().ok();
    let line = report.split(|&b| b == b'\n').find(|l| !l.is_empty());
    let Some(line) = line else {
        let how = status.map(|s| s.to_string()).unwrap_or_else(|| "unknown status".into());
        let hint = opts.shim_log.as_ref().map(|p| format!("; see {}", p.display())).unwrap_or_default();
        return Err(Error::Protocol(format!("shim exited without reporting ({how}){hint}")));
    };
    parse_report(line)
}

fn read_report(rd: &std::os::fd::OwnedFd, out: &mut Vec<u8>, deadline: Instant) -> Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::Timeout("waiting for the shim to report".into()));
        }
        let mut pfd = [libc::pollfd { fd: rd.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
        if sys::poll(&mut pfd, ms).map_err(|e| Error::errno("poll", e))? == 0 {
            continue;
        }
        match sys::read(rd.as_raw_fd(), &mut buf) {
            sys::IoResult::Done(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > crate::protocol::MAX_LINE {
                    return Err(Error::Protocol("shim report too long".into()));
                }
            }
            sys::IoResult::Eof => return Ok(()),
            sys::IoResult::WouldBlock => {}
            sys::IoResult::Failed(e) => return Err(Error::errno("read shim report", e)),
        }
    }
}

fn parse_report(line: &[u8]) -> Result<SpawnResult> {
    let v = json::parse(line).map_err(|e| Error::Protocol(format!("shim report: {e}")))?;
    let int = |k: &str| v.get(k).and_then(Value::as_i64).map(|n| n as i32);
    match v.get("status").and_then(Value::as_str) {
        Some("running" | "created") => match (int("shim_pid"), int("pid")) {
            (Some(shim_pid), Some(container_pid)) => Ok(SpawnResult { shim_pid, container_pid }),
            _ => Err(Error::Protocol("shim report without pids".into())),
        },
        Some("failed") => {
            let message = v.get("error").and_then(Value::as_str).unwrap_or("shim failed").to_string();
            if v.get("runtime").and_then(Value::as_bool).unwrap_or(true) {
                Err(Error::Runtime(message))
            } else {
                let kind = crate::protocol::kind_from_str(v.get("kind").and_then(Value::as_str).unwrap_or(""));
                Err(Error::Remote { kind, message })
            }
        }
        _ => Err(Error::Protocol(format!("unexpected shim report {}", String::from_utf8_lossy(line)))),
    }
}

/// After a timeout: the detached shim's pid is only known from its pid file.
fn kill_shim(opts: &SpawnOptions) {
    let Ok(text) = std::fs::read_to_string(opts.state_dir.join(SHIM_PID_FILE)) else {
        return;
    };
    if let Ok(pid) = text.trim().parse::<i32>() {
        let _ = crate::shim::kill_pid(pid, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports() {
        assert_eq!(
            parse_report(br#"{"status":"running","pid":42,"shim_pid":7}"#).unwrap(),
            SpawnResult { shim_pid: 7, container_pid: 42 }
        );
        let err = parse_report(br#"{"status":"failed","error":"exec: \"foo\": executable file not found in $PATH"}"#)
            .unwrap_err();
        assert!(matches!(&err, Error::Runtime(m) if m.contains("executable file not found")));
        assert_eq!(err.kind(), berth_error::ErrorKind::InvalidArgument);
        assert!(parse_report(b"{}").is_err());
        let err = parse_report(br#"{"status":"failed","error":"busy","kind":"conflict","runtime":false}"#).unwrap_err();
        assert_eq!(err.kind(), berth_error::ErrorKind::Conflict);
    }

    #[test]
    fn args_round_trip_through_the_parser() {
        let mut o = SpawnOptions::new("/shim", "c1", "/b", "/s", "/usr/sbin/runc");
        o.tty = true;
        o.stdin = true;
        o.stdin_once = true;
        o.log_path = Some("/l".into());
        o.log_max_size = Some(100);
        o.runtime_args = vec!["--systemd-cgroup".into()];
        let crate::config::Parsed::Run(c) = crate::config::parse(o.args()).unwrap() else {
            panic!("expected a run config")
        };
        assert!(c.tty && c.stdin && c.stdin_once);
        assert_eq!(c.log_max_size, 100);
        assert_eq!(c.runtime_args, vec![OsString::from("--systemd-cgroup")]);
    }

    #[test]
    fn missing_binary_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let o = SpawnOptions::new("/nonexistent/berth-shim", "c1", "/b", dir.path().join("s"), "runc");
        assert!(matches!(spawn(&o), Err(Error::Io { .. })));
    }
}
