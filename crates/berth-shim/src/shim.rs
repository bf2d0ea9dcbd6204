//! The shim process from start to exit: detach, create and start the
//! container, report to the spawner, then hand over to the event loop.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::json::ObjWriter;
use crate::log::LogWriter;
use crate::protocol::{self, Status, EXIT_FILE, SHIM_PID_FILE, SOCKET_NAME};
use crate::runtime::{self, ChildStdio, ConsoleSocket, Runtime};
use crate::server::{Container, Io, OomProbe, Server};
use crate::sys;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::{ForkResult, Pid};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Stdio;

/// Files the shim creates in the state directory besides the socket and the
/// exit record.
pub(crate) const INIT_PID_FILE: &str = "init.pid";
pub(crate) const RUNTIME_LOG: &str = "runtime.log";
pub(crate) const CONSOLE_SOCKET: &str = "console.sock";

/// The spawner's end of the ready pipe: one JSON line, then close.
pub(crate) struct Reporter(Option<OwnedFd>);

impl Reporter {
    fn new(fd: Option<i32>) -> Self {
        let owned = fd.and_then(sys::adopt_fd);
        if let Some(fd) = &owned {
            // Neither the runtime nor the container may inherit it, or the
            // spawner would never see end-of-file.
            let _ = sys::set_cloexec(fd.as_raw_fd(), true);
        }
        Reporter(owned)
    }

    fn send(&mut self, line: &[u8]) {
        if let Some(fd) = self.0.take() {
            let mut f = std::fs::File::from(fd);
            let _ = f.write_all(line);
        }
    }

    /// Reports a failure of the shim itself (bad flags, busy state directory, …).
    fn failed(&mut self, err: &Error) {
        self.fail(&err.to_string(), err.kind().as_str(), false);
    }

    /// Reports the runtime's error text.
    fn runtime_failed(&mut self, message: &str) {
        self.fail(message, "", true);
    }

    fn fail(&mut self, message: &str, kind: &str, runtime: bool) {
        eprintln!("berth-shim: {message}");
        let mut out = Vec::new();
        ObjWriter::new(&mut out)
            .str("status", "failed")
            .str("error", message)
            .str("kind", kind)
            .bool("runtime", runtime)
            .finish();
        out.push(b'\n');
        self.send(&out);
    }

    fn ready(&mut self, status: Status, pid: i32) {
        let mut out = Vec::new();
        ObjWriter::new(&mut out)
            .str("status", status.as_str())
            .int("pid", pid.into())
            .int("shim_pid", std::process::id().into())
            .finish();
        out.push(b'\n');
        self.send(&out);
    }
}

/// Runs the shim; returns the process exit code.
pub(crate) fn run(mut cfg: Config) -> i32 {
    let mut reporter = Reporter::new(cfg.ready_fd);
    if let Err(e) = resolve_paths(&mut cfg) {
        reporter.failed(&e);
        return 2;
    }
    if !cfg.foreground {
        if let Err(e) = detach() {
            reporter.failed(&e);
            return 1;
        }
    }
    let mut setup = match Setup::new(&cfg) {
        Ok(s) => s,
        Err(e) => {
            // Another shim's files must survive a refused second start.
            if !matches!(e, Error::Conflict(_)) {
                remove_state_files(&cfg.state_dir, true);
            }
            reporter.failed(&e);
            return 1;
        }
    };
    let (container, oom) = match setup.create_container(&cfg) {
        Ok(c) => c,
        Err(msg) => {
            setup.abort(&cfg);
            reporter.runtime_failed(&msg);
            return 1;
        }
    };
    let pid = container.io.pid;
    let mut server = Server::new(cfg, setup.runtime, setup.listener, setup.sigfd, setup.log, container, oom);
    if !server.cfg.no_start {
        if let Err(msg) = server.start_runtime() {
            server.abort_start();
            reporter.runtime_failed(&msg);
            return 1;
        }
    }
    reporter.ready(server.status(), pid);
    drop(reporter);
    sys::release_text();
    server.run()
}

fn resolve_paths(cfg: &mut Config) -> Result<()> {
    use crate::config::absolute;
    cfg.bundle = absolute(&cfg.bundle)?;
    cfg.state_dir = absolute(&cfg.state_dir)?;
    if cfg.runtime.components().count() > 1 {
        cfg.runtime = absolute(&cfg.runtime)?;
    }
    if let Some(r) = &cfg.runtime_root {
        cfg.runtime_root = Some(absolute(r)?);
    }
    if let Some(l) = &cfg.log_path {
        cfg.log_path = Some(absolute(l)?);
    }
    // sun_path holds 108 bytes including the terminator.
    let sock = cfg.state_dir.join(SOCKET_NAME);
    if sock.as_os_str().len() > 107 {
        return Err(Error::InvalidArgument(format!("state directory path too long for a socket: {}", sock.display())));
    }
    Ok(())
}

/// Leaves the spawner's process tree and session, like conmon: fork, the
/// parent exits at once (so the daemon reaps it immediately and never has
/// to reap the shim), the child starts a new session so a terminal hangup
/// or the daemon's process group being killed does not reach it.
fn detach() -> Result<()> {
    // SAFETY: the shim is single-threaded until here, so the child may run
    // arbitrary code after fork.
    match unsafe { nix::unistd::fork() } {
        Ok(ForkResult::Parent { .. }) => {
            // SAFETY: _exit skips atexit handlers and stdio flushing, which
            // belong to the child now.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Child) => {
            nix::unistd::setsid().map_err(|e| Error::errno("setsid", e))?;
            Ok(())
        }
        Err(e) => Err(Error::errno("fork", e)),
    }
}

/// Process-wide state prepared before the container exists.
struct Setup {
    runtime: Runtime,
    listener: UnixListener,
    sigfd: SignalFd,
    log: Option<LogWriter>,
}

impl Setup {
    fn new(cfg: &Config) -> Result<Self> {
        // Orphaned container processes (the init after `runtime create`
        // exits, `exec --detach` processes) re-parent to us so we can reap
        // them and read their status (conmon and containerd-shim do the same).
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| Error::errno("PR_SET_CHILD_SUBREAPER", e))?;
        // Blocked, not ignored: an ignored disposition would be inherited
        // by the runtime and the container, a blocked mask is reset by
        // `Command` in the child. SIGTERM/SIGINT/SIGHUP are read and
        // dropped: stopping the shim must never stop the container. A
        // blocked SIGPIPE turns a write to a closed stdin pipe into EPIPE.
        let mut mask = SigSet::empty();
        for s in [Signal::SIGCHLD, Signal::SIGPIPE, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            mask.add(s);
        }
        mask.thread_block().map_err(|e| Error::errno("block signals", e))?;
        let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| Error::errno("signalfd", e))?;
        // Never pin the caller's working directory (or its mount).
        std::env::set_current_dir("/").map_err(|e| Error::io("chdir /", e))?;

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&cfg.state_dir)
            .map_err(|e| Error::io(format!("create {}", cfg.state_dir.display()), e))?;
        let sock = cfg.state_dir.join(SOCKET_NAME);
        if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
            return Err(Error::Conflict(format!("a shim is already serving {}", cfg.state_dir.display())));
        }
        let pid_path = cfg.state_dir.join(SHIM_PID_FILE);
        std::fs::write(&pid_path, format!("{}\n", std::process::id()))
            .map_err(|e| Error::io(format!("write {}", pid_path.display()), e))?;
        let _ = std::fs::remove_file(cfg.state_dir.join(EXIT_FILE));

        let _ = std::fs::remove_file(&sock);
        // The socket grants control over the container: owner only.
        // SAFETY: umask only changes this process's file-creation mask.
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(&sock);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        let listener = bound.map_err(|e| Error::io(format!("bind {}", sock.display()), e))?;
        listener.set_nonblocking(true).map_err(|e| Error::io("listener", e))?;

        let log = match &cfg.log_path {
            Some(p) => Some(
                LogWriter::open(p, cfg.log_max_size, cfg.log_max_files)
                    .map_err(|e| Error::io(format!("open log {}", p.display()), e))?,
            ),
            None => None,
        };
        let runtime = Runtime::new(
            cfg.runtime.clone(),
            cfg.runtime_root.clone(),
            cfg.state_dir.join(RUNTIME_LOG),
            cfg.runtime_args.clone(),
        );
        Ok(Setup { runtime, listener, sigfd, log })
    }

    /// `runtime create` with the container's stdio; returns the container
    /// (pid known, not started) or the runtime's error text.
    fn create_container(&mut self, cfg: &Config) -> Result<(Container, Option<OomProbe>), String> {
        let pid_file = cfg.state_dir.join(INIT_PID_FILE);
        let _ = std::fs::remove_file(&pid_file);
        let mut io;
        if cfg.tty {
            let console =
                ConsoleSocket::bind(&cfg.state_dir.join(CONSOLE_SOCKET)).map_err(|e| format!("console socket: {e}"))?;
            self.runtime.create(&cfg.id, &cfg.bundle, &pid_file, Some(console.path()), None)?;
            let master = console.receive()?;
            drop(console);
            sys::set_nonblocking(master.as_raw_fd()).map_err(|e| format!("console: {e}"))?;
            io = Io::new(0, true);
            io.out[0] = Some(master);
            io.stdin_enabled = cfg.stdin;
        } else {
            let (stdio, ours) = pipes(cfg.stdin)?;
            self.runtime.create(&cfg.id, &cfg.bundle, &pid_file, None, Some(stdio))?;
            io = Io::from_pipes(0, ours);
        }
        io.pid = runtime::read_pid_file(&pid_file)?;
        let oom = OomProbe::new(io.pid);
        Ok((Container::new(io, cfg.stdin_once), oom))
    }

    /// Cleans up after a failed create: the runtime may have left state
    /// behind (runc keeps a "created" or "stopped" container).
    fn abort(&mut self, cfg: &Config) {
        let _ = self.runtime.delete(&cfg.id, true);
        remove_state_files(&cfg.state_dir, true);
    }
}

/// Pipes for pass-through stdio: the child's ends and ours (stdin write end,
/// stdout and stderr read ends), ours non-blocking.
pub(crate) fn pipes(stdin: bool) -> Result<(ChildStdio, PipeEnds), String> {
    let err = |e: nix::errno::Errno| format!("pipe: {e}");
    let (child_in, our_in) = if stdin {
        let (r, w) = sys::pipe().map_err(err)?;
        sys::set_nonblocking(w.as_raw_fd()).map_err(err)?;
        (Stdio::from(r), Some(w))
    } else {
        // Docker gives a container without -i /dev/null as stdin.
        (Stdio::null(), None)
    };
    let (out_r, out_w) = sys::pipe().map_err(err)?;
    let (err_r, err_w) = sys::pipe().map_err(err)?;
    sys::set_nonblocking(out_r.as_raw_fd()).map_err(err)?;
    sys::set_nonblocking(err_r.as_raw_fd()).map_err(err)?;
    Ok((
        ChildStdio { stdin: child_in, stdout: Stdio::from(out_w), stderr: Stdio::from(err_w) },
        PipeEnds { stdin: our_in, stdout: out_r, stderr: err_r },
    ))
}

/// The shim's ends of a process's pass-through pipes.
pub(crate) struct PipeEnds {
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// Removes what the shim put in the state directory; the exit record only
/// when the daemon has acknowledged it (`shutdown`) or no exit happened.
pub(crate) fn remove_state_files(dir: &Path, with_exit_record: bool) {
    let mut names = vec![SOCKET_NAME, SHIM_PID_FILE, INIT_PID_FILE, RUNTIME_LOG, CONSOLE_SOCKET];
    if with_exit_record {
        names.push(EXIT_FILE);
    }
    for n in names {
        let _ = std::fs::remove_file(dir.join(n));
    }
    // Leftovers of execs interrupted mid-start.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("exec-") || name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Writes `exit.json` atomically: a reader (a restarted daemon) sees either
/// no record or a complete one, even across a crash.
pub(crate) fn write_exit_record(dir: &Path, rec: &protocol::ExitRecord) -> std::io::Result<()> {
    let tmp = dir.join(format!("{EXIT_FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o644).open(&tmp)?;
    f.write_all(rec.to_json().as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(EXIT_FILE))?;
    std::fs::File::open(dir)?.sync_all()
}

/// Sends `signal` to `pid`, ignoring a process that is already gone.
pub(crate) fn kill_pid(pid: i32, signal: i32) -> std::result::Result<(), nix::errno::Errno> {
    let sig = Signal::try_from(signal)?;
    match nix::sys::signal::kill(Pid::from_raw(pid), sig) {
        Err(nix::errno::Errno::ESRCH) => Ok(()),
        other => other,
    }
}
