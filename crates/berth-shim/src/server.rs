//! The shim's single-threaded event loop: container and exec I/O, the
//! json-file log, reaping, and the control socket.
//!
//! One poll(2) loop, no threads, like conmon's glib main loop without glib:
//! the shim is resident once per container, so it keeps one read buffer and
//! a handful of descriptors. Container output is always read, whoever is
//! attached, so the container never blocks on a full pipe; attach clients
//! that fall behind lose output rather than slow the container (conmon
//! drops data for a slow attach socket the same way). Exec output has a
//! single consumer and no log, so a slow exec client pauses the exec's pipe
//! instead (Docker copies exec pipes straight to the client).

use crate::config::Config;
use crate::error::Error;
use crate::json::{self, Value};
use crate::log::LogWriter;
use crate::protocol::{
    frame_header, valid_id, ExecRequest, ExecStatus, ExitRecord, HelloInfo, LineBuffer, Request, Response, Status,
    StreamId, PROTOCOL_VERSION, SOCKET_NAME,
};
use crate::runtime::{self, ConsoleSocket, Runtime};
use crate::shim::{self, kill_pid, remove_state_files, write_exit_record, PipeEnds, CONSOLE_SOCKET};
use crate::sys::{self, raw, IoResult};
use crate::time::rfc3339_nanos;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::SystemTime;

/// Read size for container output: Docker's copier reads at most this much
/// per line piece too, and one buffer of it is all the shim keeps.
const READ_BUF: usize = 32 * 1024;
/// Output queued for one attach client before further output is dropped
/// (container) or the exec's pipe is paused (exec).
const CLIENT_BUF_LIMIT: usize = 256 * 1024;
/// Stdin queued for a process before the shim stops reading from clients.
const STDIN_BUF_LIMIT: usize = 64 * 1024;
/// Finished execs whose status stays queryable; older ones are forgotten,
/// so a container with a periodic health check does not grow the shim.
const MAX_FINISHED_EXECS: usize = 64;
/// Upper bound on reads when draining a process's output after it exited:
/// a process outside a PID namespace may leave writers behind.
const DRAIN_READS: usize = 64;

/// One process's stdio as the shim holds it.
pub(crate) struct Io {
    pub pid: i32,
    pub tty: bool,
    /// Read ends of stdout and stderr; with a terminal, `out[0]` is the
    /// master (also written for stdin and resized) and `out[1]` is unused.
    pub out: [Option<OwnedFd>; 2],
    /// Write end of the stdin pipe (without a terminal).
    pub stdin: Option<OwnedFd>,
    /// Whether client bytes are delivered to the process.
    pub stdin_enabled: bool,
    stdin_buf: Vec<u8>,
    stdin_close_pending: bool,
    pub exit_code: Option<i32>,
    exited_at: Option<SystemTime>,
    /// Exit handled: output drained, waiters answered.
    finished: bool,
}

impl Io {
    pub(crate) fn new(pid: i32, tty: bool) -> Self {
        Io {
            pid,
            tty,
            out: [None, None],
            stdin: None,
            stdin_enabled: false,
            stdin_buf: Vec::new(),
            stdin_close_pending: false,
            exit_code: None,
            exited_at: None,
            finished: false,
        }
    }

    pub(crate) fn from_pipes(pid: i32, ends: PipeEnds) -> Self {
        let mut io = Io::new(pid, false);
        io.out = [Some(ends.stdout), Some(ends.stderr)];
        io.stdin_enabled = ends.stdin.is_some();
        io.stdin = ends.stdin;
        io
    }

    fn stdin_fd(&self) -> Option<RawFd> {
        if !self.stdin_enabled {
            return None;
        }
        if self.tty {
            raw(&self.out[0])
        } else {
            raw(&self.stdin)
        }
    }

    fn master(&self) -> Option<RawFd> {
        if self.tty {
            raw(&self.out[0])
        } else {
            None
        }
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
        self.stdin_enabled = false;
        self.stdin_buf = Vec::new();
        self.stdin_close_pending = false;
    }

    fn record_exit(&mut self, code: i32) {
        if self.exit_code.is_none() {
            self.exit_code = Some(code);
            self.exited_at = Some(SystemTime::now());
        }
    }
}

pub(crate) struct Container {
    pub io: Io,
    status: Status,
    exit: Option<ExitRecord>,
    stdin_once: bool,
    deleted: bool,
}

impl Container {
    pub(crate) fn new(io: Io, stdin_once: bool) -> Self {
        Container { io, status: Status::Created, exit: None, stdin_once, deleted: false }
    }
}

struct Exec {
    key: u64,
    id: String,
    io: Io,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Container,
    Exec(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reading request lines.
    Request,
    /// Attached: output to the client, client bytes to stdin.
    Stream { target: Target, stdin: bool, stdout: bool, stderr: bool },
    /// Waiting for the container's exit.
    Wait,
    /// Waiting for an exec's exit.
    ExecWait(u64),
}

struct Client {
    sock: UnixStream,
    lines: LineBuffer,
    wbuf: Vec<u8>,
    mode: Mode,
    read_eof: bool,
    dead: bool,
    close_when_flushed: bool,
}

impl Client {
    fn queue(&mut self, parts: &[&[u8]], droppable: bool) {
        if self.dead {
            return;
        }
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if droppable && self.wbuf.len() + total > CLIENT_BUF_LIMIT {
            return;
        }
        for p in parts {
            self.wbuf.extend_from_slice(p);
        }
        self.flush();
    }

    fn respond(&mut self, resp: &Response) {
        self.queue(&[&resp.encode()], false);
    }

    fn flush(&mut self) {
        while !self.wbuf.is_empty() {
            match sys::send(self.sock.as_raw_fd(), &self.wbuf) {
                IoResult::Done(n) => {
                    self.wbuf.drain(..n);
                }
                IoResult::WouldBlock => break,
                IoResult::Eof | IoResult::Failed(_) => {
                    self.dead = true;
                    self.wbuf = Vec::new();
                    return;
                }
            }
        }
        if self.wbuf.is_empty() && self.wbuf.capacity() > 64 * 1024 {
            self.wbuf = Vec::new();
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Token {
    Signal,
    Listener,
    Out(Target, usize),
    Stdin(Target),
    Client(usize),
}

/// Reads the container's OOM-kill counter, as containerd's cgroup OOM
/// watcher and Docker's `OOMKilled` do: the memory cgroup's `oom_kill`
/// count (v1 `memory.oom_control`, v2 `memory.events`) grew while the
/// container ran.
pub(crate) struct OomProbe {
    file: PathBuf,
    base: u64,
}

impl OomProbe {
    pub(crate) fn new(pid: i32) -> Option<Self> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mut v2 = None;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if ctrls.split(',').any(|c| c == "memory") {
                let file = PathBuf::from(format!("/sys/fs/cgroup/memory{path}/memory.oom_control"));
                return Self::with_file(file);
            }
            if ctrls.is_empty() {
                let root = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
                    "/sys/fs/cgroup"
                } else {
                    "/sys/fs/cgroup/unified"
                };
                v2 = Some(PathBuf::from(format!("{root}{path}/memory.events")));
            }
        }
        v2.and_then(Self::with_file)
    }

    fn with_file(file: PathBuf) -> Option<Self> {
        let base = Self::count(&file)?;
        Some(OomProbe { file, base })
    }

    fn count(file: &std::path::Path) -> Option<u64> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok())
    }

    fn fired(&self) -> bool {
        Self::count(&self.file).is_some_and(|n| n > self.base)
    }
}

pub(crate) struct Server {
    pub cfg: Config,
    runtime: Runtime,
    listener: UnixListener,
    sigfd: SignalFd,
    log: Option<LogWriter>,
    container: Container,
    oom: Option<OomProbe>,
    execs: Vec<Exec>,
    next_exec_key: u64,
    clients: Vec<Client>,
    buf: Vec<u8>,
    pfds: Vec<libc::pollfd>,
    tokens: Vec<Token>,
    shutdown: bool,
    /// The control socket's name is gone (the shim is about to exit).
    unlinked: bool,
}

impl Server {
    pub(crate) fn new(
        cfg: Config,
        runtime: Runtime,
        listener: UnixListener,
        sigfd: SignalFd,
        log: Option<LogWriter>,
        container: Container,
        oom: Option<OomProbe>,
    ) -> Self {
        Server {
            cfg,
            runtime,
            listener,
            sigfd,
            log,
            container,
            oom,
            execs: Vec::new(),
            next_exec_key: 1,
            clients: Vec::new(),
            buf: vec![0u8; READ_BUF],
            pfds: Vec::new(),
            tokens: Vec::new(),
            shutdown: false,
            unlinked: false,
        }
    }

    pub(crate) fn status(&self) -> Status {
        self.container.status
    }

    /// `runtime start`; the runtime's error text on failure.
    pub(crate) fn start_runtime(&mut self) -> Result<(), String> {
        self.runtime.start(&self.cfg.id)?;
        self.container.status = Status::Running;
        Ok(())
    }

    /// After a failed first start: no container may outlive the report.
    pub(crate) fn abort_start(&mut self) {
        let pid = self.container.io.pid;
        let _ = kill_pid(pid, libc::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        let _ = self.runtime.delete(&self.cfg.id, true);
        remove_state_files(&self.cfg.state_dir, true);
    }

    /// Serves until the container has exited and the daemon has been told
    /// (or nobody is connected); returns the process exit code.
    pub(crate) fn run(mut self) -> i32 {
        loop {
            self.settle();
            if self.should_exit() {
                break;
            }
            self.build_poll();
            let mut pfds = std::mem::take(&mut self.pfds);
            let tokens = std::mem::take(&mut self.tokens);
            if let Err(e) = sys::poll(&mut pfds, -1) {
                // EINVAL/ENOMEM: nothing sensible to do but retry calmly.
                eprintln!("berth-shim: poll: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
            } else {
                for (p, t) in pfds.iter().zip(tokens.iter()) {
                    if p.revents != 0 {
                        self.handle(*t, p.revents);
                    }
                }
            }
            self.pfds = pfds;
            self.tokens = tokens;
        }
        remove_state_files(&self.cfg.state_dir, self.shutdown);
        0
    }

    fn should_exit(&mut self) -> bool {
        if self.shutdown {
            return true;
        }
        if !self.container.io.finished || !self.clients.is_empty() {
            return false;
        }
        // Unlink first, then take what is already queued: a client whose
        // connect() succeeded is served (it may be a daemon that came back
        // for the exit status), and one that comes later finds no socket
        // and reads exit.json instead of a connection reset.
        if !self.unlinked {
            let _ = std::fs::remove_file(self.cfg.state_dir.join(SOCKET_NAME));
            self.unlinked = true;
        }
        self.accept();
        self.clients.is_empty()
    }

    fn build_poll(&mut self) {
        let mut pfds = std::mem::take(&mut self.pfds);
        let mut tokens = std::mem::take(&mut self.tokens);
        pfds.clear();
        tokens.clear();
        let mut add = |fd: RawFd, events: libc::c_short, t: Token| {
            pfds.push(libc::pollfd { fd, events, revents: 0 });
            tokens.push(t);
        };
        add(self.sigfd.as_raw_fd(), libc::POLLIN, Token::Signal);
        add(self.listener.as_raw_fd(), libc::POLLIN, Token::Listener);
        let mut ios: Vec<(Target, &Io)> = vec![(Target::Container, &self.container.io)];
        ios.extend(self.execs.iter().map(|e| (Target::Exec(e.key), &e.io)));
        for (t, io) in ios {
            let paused = matches!(t, Target::Exec(_)) && self.exec_paused(t);
            for (i, fd) in io.out.iter().enumerate() {
                if let (Some(fd), false) = (fd, paused) {
                    add(fd.as_raw_fd(), libc::POLLIN, Token::Out(t, i));
                }
            }
            if let (Some(fd), false) = (io.stdin_fd(), io.stdin_buf.is_empty()) {
                add(fd, libc::POLLOUT, Token::Stdin(t));
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            let mut ev: libc::c_short = 0;
            if !c.read_eof && self.wants_input(c) {
                ev |= libc::POLLIN;
            }
            if !c.wbuf.is_empty() {
                ev |= libc::POLLOUT;
            }
            // Always polled: POLLHUP reports a peer that closed both halves.
            add(c.sock.as_raw_fd(), ev, Token::Client(i));
        }
        self.pfds = pfds;
        self.tokens = tokens;
    }

    fn wants_input(&self, c: &Client) -> bool {
        match c.mode {
            Mode::Stream { target, stdin: true, .. } => {
                self.io(target).is_none_or(|io| io.stdin_buf.len() < STDIN_BUF_LIMIT)
            }
            _ => true,
        }
    }

    fn exec_paused(&self, t: Target) -> bool {
        self.clients
            .iter()
            .any(|c| matches!(c.mode, Mode::Stream { target, .. } if target == t) && c.wbuf.len() >= CLIENT_BUF_LIMIT)
    }

    fn io(&self, t: Target) -> Option<&Io> {
        match t {
            Target::Container => Some(&self.container.io),
            Target::Exec(k) => self.execs.iter().find(|e| e.key == k).map(|e| &e.io),
        }
    }

    fn io_mut(&mut self, t: Target) -> Option<&mut Io> {
        match t {
            Target::Container => Some(&mut self.container.io),
            Target::Exec(k) => self.execs.iter_mut().find(|e| e.key == k).map(|e| &mut e.io),
        }
    }

    fn handle(&mut self, t: Token, revents: libc::c_short) {
        match t {
            Token::Signal => self.on_signal(),
            Token::Listener => self.accept(),
            Token::Out(target, i) => {
                self.read_output(target, i);
            }
            Token::Stdin(target) => self.flush_stdin(target),
            Token::Client(ci) => self.on_client(ci, revents),
        }
    }

    fn on_signal(&mut self) {
        // Read every queued signal; SIGTERM, SIGINT, SIGHUP and SIGPIPE are dropped
        // on purpose (see `Setup::new`), SIGCHLD means "reap".
        while let Ok(Some(_)) = self.sigfd.read_signal() {}
        self.reap();
    }

    /// Collects every exited child: the container init, execs, and any
    /// process re-parented to this subreaper.
    fn reap(&mut self) {
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                // Docker reports a signal death as 128+signal.
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) => return,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            };
            if pid == self.container.io.pid {
                self.container.io.record_exit(code);
            } else if let Some(e) = self.execs.iter_mut().find(|e| e.io.pid == pid) {
                e.io.record_exit(code);
            }
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.clients.push(Client {
                        sock,
                        lines: LineBuffer::new(),
                        wbuf: Vec::new(),
                        mode: Mode::Request,
                        read_eof: false,
                        dead: false,
                        close_when_flushed: false,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Reads one chunk of a process's output; false once nothing more is
    /// available right now (or ever).
    fn read_output(&mut self, t: Target, i: usize) -> bool {
        let Some(fd) = self.io(t).and_then(|io| raw(&io.out[i])) else {
            return false;
        };
        let mut buf = std::mem::take(&mut self.buf);
        let more = match sys::read(fd, &mut buf) {
            IoResult::Done(n) => {
                let stream = if i == 0 { StreamId::Stdout } else { StreamId::Stderr };
                self.dispatch(t, stream, &buf[..n]);
                true
            }
            IoResult::WouldBlock => false,
            IoResult::Eof | IoResult::Failed(_) => {
                if let Some(io) = self.io_mut(t) {
                    io.out[i] = None;
                }
                false
            }
        };
        self.buf = buf;
        more
    }

    fn dispatch(&mut self, t: Target, stream: StreamId, data: &[u8]) {
        if t == Target::Container {
            if let Some(log) = &mut self.log {
                log.write(stream, data, SystemTime::now());
            }
        }
        let tty = self.io(t).is_some_and(|io| io.tty);
        let header = frame_header(stream, data.len() as u32);
        for c in &mut self.clients {
            let Mode::Stream { target, stdout, stderr, .. } = c.mode else {
                continue;
            };
            let wanted = if stream == StreamId::Stderr { stderr } else { stdout };
            if target != t || !wanted {
                continue;
            }
            if tty {
                c.queue(&[data], t == Target::Container);
            } else {
                c.queue(&[&header, data], t == Target::Container);
            }
        }
    }

    fn stdin_input(&mut self, t: Target, data: &[u8]) {
        if let Some(io) = self.io_mut(t) {
            if io.stdin_fd().is_some() && !io.stdin_close_pending {
                io.stdin_buf.extend_from_slice(data);
            }
        }
        self.flush_stdin(t);
    }

    fn flush_stdin(&mut self, t: Target) {
        let Some(io) = self.io_mut(t) else {
            return;
        };
        let Some(fd) = io.stdin_fd() else {
            io.stdin_buf = Vec::new();
            return;
        };
        while !io.stdin_buf.is_empty() {
            match sys::write(fd, &io.stdin_buf) {
                IoResult::Done(n) => {
                    io.stdin_buf.drain(..n);
                }
                IoResult::WouldBlock => break,
                IoResult::Eof | IoResult::Failed(_) => {
                    // The process closed its stdin (EPIPE): nothing more
                    // can be delivered.
                    if io.tty {
                        io.stdin_buf = Vec::new();
                    } else {
                        io.close_stdin();
                    }
                    return;
                }
            }
        }
        if io.stdin_close_pending && io.stdin_buf.is_empty() {
            io.close_stdin();
        }
    }

    /// A client's input ended: for stdin-once containers (Docker's
    /// `StdinOnce`, set by `docker run -i`) and for execs, that closes the
    /// process's stdin so e.g. `cat` sees end-of-file. A terminal cannot be
    /// half-closed; as in containerd's shim, its stdin just stops.
    fn stdin_eof(&mut self, t: Target) {
        let once = match t {
            Target::Container => self.container.stdin_once,
            Target::Exec(_) => true,
        };
        if let Some(io) = self.io_mut(t) {
            if once && !io.tty && io.stdin.is_some() {
                io.stdin_close_pending = true;
            }
        }
        self.flush_stdin(t);
    }

    fn on_client(&mut self, ci: usize, revents: libc::c_short) {
        if revents & libc::POLLOUT != 0 {
            self.clients[ci].flush();
        }
        if revents & (libc::POLLIN | libc::POLLHUP) != 0 && !self.clients[ci].read_eof {
            self.read_client(ci);
        }
        let c = &mut self.clients[ci];
        if revents & libc::POLLERR != 0 || (revents & libc::POLLHUP != 0 && c.read_eof) {
            c.dead = true;
        }
    }

    fn read_client(&mut self, ci: usize) {
        let fd = self.clients[ci].sock.as_raw_fd();
        let mut buf = std::mem::take(&mut self.buf);
        match sys::read(fd, &mut buf) {
            IoResult::Done(n) => self.client_input(ci, &buf[..n]),
            IoResult::WouldBlock => {}
            IoResult::Eof => {
                self.clients[ci].read_eof = true;
                self.client_eof(ci);
            }
            IoResult::Failed(_) => {
                self.clients[ci].read_eof = true;
                self.clients[ci].dead = true;
                self.client_eof(ci);
            }
        }
        self.buf = buf;
    }

    fn client_input(&mut self, ci: usize, data: &[u8]) {
        match self.clients[ci].mode {
            Mode::Stream { target, stdin: true, .. } => self.stdin_input(target, data),
            Mode::Stream { .. } => {}
            _ => {
                self.clients[ci].lines.push(data);
                self.process_lines(ci);
            }
        }
    }

    fn client_eof(&mut self, ci: usize) {
        match self.clients[ci].mode {
            Mode::Request => self.clients[ci].close_when_flushed = true,
            Mode::Stream { target, stdin: true, stdout, stderr } => {
                self.clients[ci].mode = Mode::Stream { target, stdin: false, stdout, stderr };
                self.stdin_eof(target);
            }
            // A waiter may half-close its side and still read the answer.
            Mode::Stream { .. } | Mode::Wait | Mode::ExecWait(_) => {}
        }
    }

    fn process_lines(&mut self, ci: usize) {
        loop {
            let c = &mut self.clients[ci];
            if c.dead || c.mode != Mode::Request {
                return;
            }
            let line = match c.lines.next_line() {
                Ok(Some(line)) => line,
                Ok(None) => {
                    // Input ended while a wait was pending: once the last
                    // answer is out, the connection is done.
                    if c.read_eof {
                        c.close_when_flushed = true;
                    }
                    return;
                }
                Err(e) => {
                    c.respond(&Response::from_error(&e));
                    c.close_when_flushed = true;
                    return;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let resp = match Request::decode(&line) {
                Ok(req) => self.handle_request(ci, req),
                Err(e) => Some(Response::from_error(&e)),
            };
            if let Some(resp) = resp {
                self.clients[ci].respond(&resp);
            }
            if let Mode::Stream { target, stdin, .. } = self.clients[ci].mode {
                // Bytes pipelined after the request are already the stream.
                let rest = self.clients[ci].lines.take_rest();
                if stdin && !rest.is_empty() {
                    self.stdin_input(target, &rest);
                }
                return;
            }
        }
    }

    /// Handles one request; `None` when the answer comes later (waits).
    fn handle_request(&mut self, ci: usize, req: Request) -> Option<Response> {
        let result = match req {
            Request::Hello => Ok(Response::Hello(self.hello())),
            Request::Start => self.start_request(),
            Request::Attach { stdin, stdout, stderr } => self.attach(ci, stdin, stdout, stderr),
            Request::Exec(e) => self.exec(ci, e),
            Request::ExecState { id } => self.exec_status(&id).map(Response::ExecStatus),
            Request::ExecWait { id } => match self.execs.iter().find(|e| e.id == id) {
                Some(e) if !e.io.finished => {
                    self.clients[ci].mode = Mode::ExecWait(e.key);
                    return None;
                }
                Some(_) => self.exec_status(&id).map(Response::ExecStatus),
                None => Err(Error::NotFound(format!("no such exec: {id}"))),
            },
            Request::Resize { exec_id, width, height } => self.resize(exec_id.as_deref(), width, height),
            Request::Kill { exec_id, signal, all } => self.kill(exec_id.as_deref(), signal, all),
            Request::Wait => match &self.container.exit {
                Some(rec) => Ok(Response::Exit(rec.clone())),
                None => {
                    self.clients[ci].mode = Mode::Wait;
                    return None;
                }
            },
            Request::Shutdown => self.shutdown_request(ci),
        };
        Some(result.unwrap_or_else(|e| Response::from_error(&e)))
    }

    fn hello(&self) -> HelloInfo {
        HelloInfo {
            version: PROTOCOL_VERSION,
            id: self.cfg.id.clone(),
            shim_pid: std::process::id() as i32,
            pid: self.container.io.pid,
            status: self.container.status,
            tty: self.cfg.tty,
            stdin: self.cfg.stdin,
            exit: self.container.exit.clone(),
        }
    }

    fn not_running(&self) -> Error {
        Error::Conflict(format!("container {} is not running", self.cfg.id))
    }

    fn start_request(&mut self) -> Result<Response, Error> {
        if self.container.status != Status::Created || self.container.io.exit_code.is_some() {
            return Err(Error::Conflict(format!("container {} is not in the created state", self.cfg.id)));
        }
        if let Err(msg) = self.start_runtime() {
            // The init is parked in the runtime's exec fifo; kill it so the
            // normal exit path records the failure and cleans up.
            let _ = kill_pid(self.container.io.pid, libc::SIGKILL);
            return Err(Error::Runtime(msg));
        }
        Ok(Response::Started { pid: self.container.io.pid })
    }

    fn attach(&mut self, ci: usize, stdin: bool, stdout: bool, stderr: bool) -> Result<Response, Error> {
        if self.container.status == Status::Exited || self.container.io.exit_code.is_some() {
            // Docker's wording for the same case.
            return Err(Error::Conflict("You cannot attach to a stopped container, start it first".into()));
        }
        let stdin = stdin && self.container.io.stdin_enabled;
        self.clients[ci].mode = Mode::Stream { target: Target::Container, stdin, stdout, stderr };
        Ok(Response::Attached { tty: self.cfg.tty })
    }

    fn exec_status(&self, id: &str) -> Result<ExecStatus, Error> {
        let e = self.execs.iter().find(|e| e.id == id).ok_or_else(|| Error::NotFound(format!("no such exec: {id}")))?;
        Ok(ExecStatus { id: e.id.clone(), pid: e.io.pid, running: e.io.exit_code.is_none(), exit_code: e.io.exit_code })
    }

    fn exec(&mut self, ci: usize, req: ExecRequest) -> Result<Response, Error> {
        if !valid_id(&req.id) {
            return Err(Error::InvalidArgument(format!("invalid exec id {:?}", req.id)));
        }
        if self.execs.iter().any(|e| e.id == req.id) {
            return Err(Error::Conflict(format!("exec {} already exists", req.id)));
        }
        if self.container.status != Status::Running || self.container.io.exit_code.is_some() {
            return Err(self.not_running());
        }
        let mut process =
            json::parse(req.process.as_bytes()).map_err(|e| Error::InvalidArgument(format!("exec process: {e}")))?;
        process.set("terminal", Value::Bool(req.tty));
        let dir = self.cfg.state_dir.clone();
        let process_file = dir.join(format!("exec-{}.json", req.id));
        let pid_file = dir.join(format!("exec-{}.pid", req.id));
        let result = self.start_exec_process(&req, &process, &process_file, &pid_file);
        let _ = std::fs::remove_file(&process_file);
        let _ = std::fs::remove_file(&pid_file);
        let io = result?;
        let (pid, tty) = (io.pid, io.tty);
        let key = self.next_exec_key;
        self.next_exec_key += 1;
        self.execs.push(Exec { key, id: req.id, io });
        if !req.detach {
            self.clients[ci].mode =
                Mode::Stream { target: Target::Exec(key), stdin: req.stdin, stdout: true, stderr: true };
        }
        Ok(Response::ExecStarted { pid, tty })
    }

    fn start_exec_process(
        &mut self,
        req: &ExecRequest,
        process: &Value,
        process_file: &std::path::Path,
        pid_file: &std::path::Path,
    ) -> Result<Io, Error> {
        let mut text = Vec::new();
        process.write(&mut text);
        // The process may carry secrets in its environment: owner only.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(process_file)
            .map_err(|e| Error::io(format!("write {}", process_file.display()), e))?;
        std::io::Write::write_all(&mut f, &text)
            .map_err(|e| Error::io(format!("write {}", process_file.display()), e))?;
        drop(f);
        let stdin = req.stdin && !req.detach;
        let mut io = if req.tty {
            let console = ConsoleSocket::bind(&self.cfg.state_dir.join(CONSOLE_SOCKET))
                .map_err(|e| Error::io("console socket", e))?;
            self.runtime
                .exec(&self.cfg.id, process_file, pid_file, Some(console.path()), None)
                .map_err(Error::Runtime)?;
            let master = console.receive().map_err(Error::Runtime)?;
            sys::set_nonblocking(master.as_raw_fd()).map_err(|e| Error::errno("console", e))?;
            let mut io = Io::new(0, true);
            io.out[0] = Some(master);
            io.stdin_enabled = stdin;
            io
        } else {
            let (child, ours) = shim::pipes(stdin).map_err(Error::Runtime)?;
            self.runtime.exec(&self.cfg.id, process_file, pid_file, None, Some(child)).map_err(Error::Runtime)?;
            Io::from_pipes(0, ours)
        };
        io.pid = runtime::read_pid_file(pid_file).map_err(Error::Runtime)?;
        Ok(io)
    }

    fn resize(&mut self, exec_id: Option<&str>, width: u16, height: u16) -> Result<Response, Error> {
        let io = match exec_id {
            Some(id) => {
                &self
                    .execs
                    .iter()
                    .find(|e| e.id == id)
                    .ok_or_else(|| Error::NotFound(format!("no such exec: {id}")))?
                    .io
            }
            None => &self.container.io,
        };
        // Like containerd's shim, resizing a process without a terminal
        // (or one that has exited) is not an error.
        if let Some(fd) = io.master() {
            runtime::set_winsize(fd, width, height).map_err(|e| Error::io("TIOCSWINSZ", e))?;
        }
        Ok(Response::Done)
    }

    fn kill(&mut self, exec_id: Option<&str>, signal: i32, all: bool) -> Result<Response, Error> {
        match exec_id {
            Some(id) => {
                let e = self
                    .execs
                    .iter()
                    .find(|e| e.id == id)
                    .ok_or_else(|| Error::NotFound(format!("no such exec: {id}")))?;
                if e.io.exit_code.is_some() {
                    return Err(Error::Conflict(format!("exec {id} is not running")));
                }
                kill_pid(e.io.pid, signal).map_err(|e| Error::errno("kill", e))?;
            }
            None => {
                if self.container.io.exit_code.is_some() {
                    return Err(self.not_running());
                }
                self.runtime.kill(&self.cfg.id, signal, all).map_err(Error::Runtime)?;
            }
        }
        Ok(Response::Done)
    }

    fn shutdown_request(&mut self, ci: usize) -> Result<Response, Error> {
        let Some(rec) = self.container.exit.clone() else {
            return Err(Error::Conflict(format!("container {} is still running", self.cfg.id)));
        };
        if !self.container.deleted {
            self.delete_runtime();
        }
        self.shutdown = true;
        self.clients[ci].close_when_flushed = true;
        Ok(Response::Exit(rec))
    }

    fn delete_runtime(&mut self) {
        if let Err(e) = self.runtime.delete(&self.cfg.id, false) {
            if let Err(e2) = self.runtime.delete(&self.cfg.id, true) {
                eprintln!("berth-shim: delete {}: {e}; forced: {e2}", self.cfg.id);
            }
        }
        self.container.deleted = true;
    }

    /// Work that follows events: exits, finished clients.
    fn settle(&mut self) {
        if self.container.io.exit_code.is_some() && !self.container.io.finished {
            self.finish_container();
        }
        let done: Vec<u64> =
            self.execs.iter().filter(|e| e.io.exit_code.is_some() && !e.io.finished).map(|e| e.key).collect();
        for key in done {
            self.finish_exec(key);
        }
        self.evict_execs();
        let mut eofs = Vec::new();
        for c in &mut self.clients {
            if c.close_when_flushed && c.wbuf.is_empty() {
                c.dead = true;
            }
            if let (true, Mode::Stream { target, stdin: true, .. }) = (c.dead, c.mode) {
                eofs.push(target);
            }
        }
        self.clients.retain(|c| !c.dead);
        for t in eofs {
            self.stdin_eof(t);
        }
    }

    /// Reads what the exited process left in its pipes, then closes them.
    fn drain(&mut self, t: Target) {
        for i in 0..2 {
            for _ in 0..DRAIN_READS {
                if !self.read_output(t, i) {
                    break;
                }
            }
            if let Some(io) = self.io_mut(t) {
                io.out[i] = None;
            }
        }
    }

    fn finish_container(&mut self) {
        self.drain(Target::Container);
        let now = SystemTime::now();
        if let Some(log) = &mut self.log {
            log.flush_partial(now);
        }
        let io = &mut self.container.io;
        io.close_stdin();
        io.finished = true;
        let rec = ExitRecord {
            exit_code: io.exit_code.unwrap_or(-1),
            exited_at: rfc3339_nanos(io.exited_at.unwrap_or(now)),
            oom_killed: self.oom.as_ref().is_some_and(OomProbe::fired),
        };
        if let Err(e) = write_exit_record(&self.cfg.state_dir, &rec) {
            eprintln!("berth-shim: write exit record: {e}");
        }
        if !self.cfg.no_delete {
            self.delete_runtime();
        }
        self.container.status = Status::Exited;
        self.container.exit = Some(rec.clone());
        for ci in 0..self.clients.len() {
            match self.clients[ci].mode {
                Mode::Wait => {
                    self.clients[ci].respond(&Response::Exit(rec.clone()));
                    self.clients[ci].mode = Mode::Request;
                    self.process_lines(ci);
                }
                Mode::Stream { target: Target::Container, .. } => self.clients[ci].close_when_flushed = true,
                _ => {}
            }
        }
    }

    fn finish_exec(&mut self, key: u64) {
        let t = Target::Exec(key);
        self.drain(t);
        let Some(e) = self.execs.iter_mut().find(|e| e.key == key) else {
            return;
        };
        e.io.close_stdin();
        e.io.finished = true;
        let status = ExecStatus { id: e.id.clone(), pid: e.io.pid, running: false, exit_code: e.io.exit_code };
        for ci in 0..self.clients.len() {
            match self.clients[ci].mode {
                Mode::ExecWait(k) if k == key => {
                    self.clients[ci].respond(&Response::ExecStatus(status.clone()));
                    self.clients[ci].mode = Mode::Request;
                    self.process_lines(ci);
                }
                Mode::Stream { target, .. } if target == t => self.clients[ci].close_when_flushed = true,
                _ => {}
            }
        }
    }

    fn evict_execs(&mut self) {
        let finished = self.execs.iter().filter(|e| e.io.finished).count();
        if finished <= MAX_FINISHED_EXECS {
            return;
        }
        let mut excess = finished - MAX_FINISHED_EXECS;
        // Oldest first: execs are pushed in key order.
        self.execs.retain(|e| {
            if excess > 0 && e.io.finished {
                excess -= 1;
                false
            } else {
                true
            }
        });
    }
}
