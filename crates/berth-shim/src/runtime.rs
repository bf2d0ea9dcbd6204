//! Driving the OCI runtime through the runc command-line contract, and
//! receiving pseudo-terminal masters over a console socket.
//!
//! Every invocation passes `--log <state>/runtime.log --log-format json`, and a
//! failure is reported with the last `"level":"error"` message of that log,
//! as containerd's runc shim does (`getLastRuntimeError` on `log.json`): the
//! runtime's stderr is the container's stderr in pass-through mode, so it
//! cannot carry the error.

use crate::json;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::ffi::OsString;
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) struct Runtime {
    path: PathBuf,
    root: Option<PathBuf>,
    log: PathBuf,
    extra: Vec<OsString>,
}

/// The three standard streams handed to `create` or `exec` in pass-through mode.
pub(crate) struct ChildStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Runtime {
    pub(crate) fn new(path: PathBuf, root: Option<PathBuf>, log: PathBuf, extra: Vec<OsString>) -> Self {
        Runtime { path, root, log, extra }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        // SAFETY: the closure only makes async-signal-safe calls.
        unsafe { c.pre_exec(crate::sys::reset_signals_for_exec) };
        if let Some(root) = &self.root {
            c.arg("--root").arg(root);
        }
        c.arg("--log").arg(&self.log).arg("--log-format").arg("json");
        c.args(&self.extra);
        c
    }

    /// Runs `cmd` to completion; `Err` carries the runtime's error text.
    fn run(&self, mut cmd: Command, stdio: Option<ChildStdio>) -> Result<(), String> {
        // A fresh log per invocation: the last error in it is this call's.
        let _ = std::fs::write(&self.log, b"");
        match stdio {
            Some(s) => {
                cmd.stdin(s.stdin).stdout(s.stdout).stderr(s.stderr);
            }
            None => {
                cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
            }
        }
        let out = cmd.output().map_err(|e| format!("exec {}: {e}", self.path.display()));
        // Drop the command so this process's copies of the child's pipe ends
        // are closed before the caller starts reading the other ends.
        drop(cmd);
        // Spawning touched code the event loop never runs again.
        crate::sys::release_text();
        let out = out?;
        if out.status.success() {
            return Ok(());
        }
        if let Some(msg) = self.last_error() {
            return Err(msg);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        if !stderr.is_empty() {
            return Err(stderr.to_string());
        }
        Err(format!("{} failed: {}", self.path.display(), out.status))
    }

    /// The message of the last error entry in the runtime's JSON log.
    pub(crate) fn last_error(&self) -> Option<String> {
        let text = std::fs::read(&self.log).ok()?;
        text.rsplit(|&b| b == b'\n')
            .filter_map(|line| json::parse(line).ok())
            .find(|v| v.get("level").and_then(json::Value::as_str) == Some("error"))
            .and_then(|v| v.get("msg").and_then(json::Value::as_str).map(str::to_string))
    }

    pub(crate) fn create(
        &self,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        console: Option<&Path>,
        stdio: Option<ChildStdio>,
    ) -> Result<(), String> {
        let mut c = self.command();
        c.arg("create").arg("--bundle").arg(bundle).arg("--pid-file").arg(pid_file);
        if let Some(sock) = console {
            c.arg("--console-socket").arg(sock);
        }
        c.arg(id);
        self.run(c, stdio)
    }

    pub(crate) fn start(&self, id: &str) -> Result<(), String> {
        let mut c = self.command();
        c.arg("start").arg(id);
        self.run(c, None)
    }

    /// `exec --detach`: the runtime returns once the process runs, and the
    /// process is re-parented to this subreaper (conmon's `--exec` mode does
    /// the same with `runc exec -d`).
    pub(crate) fn exec(
        &self,
        id: &str,
        process: &Path,
        pid_file: &Path,
        console: Option<&Path>,
        stdio: Option<ChildStdio>,
    ) -> Result<(), String> {
        let mut c = self.command();
        c.arg("exec").arg("--detach").arg("--process").arg(process).arg("--pid-file").arg(pid_file);
        if let Some(sock) = console {
            c.arg("--console-socket").arg(sock);
        }
        c.arg(id);
        self.run(c, stdio)
    }

    pub(crate) fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), String> {
        let mut c = self.command();
        c.arg("kill");
        if all {
            c.arg("--all");
        }
        c.arg(id).arg(signal.to_string());
        self.run(c, None)
    }

    pub(crate) fn delete(&self, id: &str, force: bool) -> Result<(), String> {
        let mut c = self.command();
        c.arg("delete");
        if force {
            c.arg("--force");
        }
        c.arg(id);
        self.run(c, None)
    }
}

/// Reads a pid file written by the runtime.
pub(crate) fn read_pid_file(path: &Path) -> Result<i32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("read pid file {}: {e}", path.display()))?;
    text.trim().parse().map_err(|_| format!("pid file {} holds {:?}", path.display(), text.trim()))
}

/// A listening socket on which the runtime sends the pseudo-terminal master
/// (runc's `--console-socket` contract: one SCM_RIGHTS message).
pub(crate) struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    pub(crate) fn bind(path: &Path) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        Ok(ConsoleSocket { listener, path: path.to_path_buf() })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the master the runtime sent. Called after the runtime command
    /// returned: runc's send does not wait for us to accept, the connection
    /// and the message sit in the socket's backlog.
    pub(crate) fn receive(&self) -> Result<OwnedFd, String> {
        self.listener.set_nonblocking(true).map_err(|e| format!("console socket: {e}"))?;
        let (conn, _) = self.listener.accept().map_err(|e| format!("runtime sent no console: {e}"))?;
        let mut name = [0u8; 256];
        let mut iov = [IoSliceMut::new(&mut name)];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(conn.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC)
            .map_err(|e| format!("receive console: {e}"))?;
        let mut master = None;
        for c in msg.cmsgs().map_err(|e| format!("receive console: {e}"))? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for fd in fds {
                    // SAFETY: the kernel just installed this descriptor for us
                    // and nothing else refers to it.
                    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                    if master.is_none() {
                        master = Some(owned);
                    }
                }
            }
        }
        master.ok_or_else(|| "runtime sent no console descriptor".to_string())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// TIOCSWINSZ on a pseudo-terminal master.
pub(crate) fn set_winsize(fd: RawFd, width: u16, height: u16) -> std::io::Result<()> {
    let ws = libc::winsize { ws_row: height, ws_col: width, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which is valid
    // for the duration of the call.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
