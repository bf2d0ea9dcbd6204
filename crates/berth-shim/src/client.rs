//! A blocking client of the shim protocol, for the daemon and tests.
//!
//! One [`ShimClient`] is one connection. Plain requests can be sent one after
//! another on it; `attach` and `exec` turn the connection into a byte stream
//! and therefore consume the client.

use crate::error::{Error, Result};
use crate::protocol::{
    ExecRequest, ExecStatus, ExitRecord, HelloInfo, Request, Response, EXIT_FILE, MAX_LINE, PROTOCOL_VERSION,
    SOCKET_NAME,
};
use std::io::{ErrorKind as IoKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The control socket of the shim owning `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// Reads `exit.json` from a state directory: what a restarted daemon uses
/// for a container whose shim has already gone. `Ok(None)` if there is none.
pub fn read_exit_record(state_dir: &Path) -> Result<Option<ExitRecord>> {
    let path = state_dir.join(EXIT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => ExitRecord::from_json(&bytes).map(Some),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("read {}", path.display()), e)),
    }
}

/// A connection that was switched to streaming by `attach` or `exec`.
#[derive(Debug)]
pub struct Stream {
    /// Output arrives here (multiplexed frames without a terminal, raw bytes
    /// with one); bytes written go to stdin; `shutdown(Write)` ends stdin.
    /// End-of-file means the process exited and its output is complete.
    pub stream: UnixStream,
    pub tty: bool,
    /// The process's pid (the container init for `attach`).
    pub pid: i32,
}

/// One connection to a shim.
#[derive(Debug)]
pub struct ShimClient {
    sock: UnixStream,
}

impl ShimClient {
    /// Connects to the shim of `state_dir`. A shim that is gone (no socket,
    /// or nobody listening) is [`Error::NotFound`]; read the exit record then.
    pub fn connect(state_dir: &Path) -> Result<Self> {
        Self::connect_socket(&socket_path(state_dir))
    }

    pub fn connect_socket(path: &Path) -> Result<Self> {
        match UnixStream::connect(path) {
            Ok(sock) => Ok(ShimClient { sock }),
            Err(e) if matches!(e.kind(), IoKind::NotFound | IoKind::ConnectionRefused) => {
                Err(Error::NotFound(format!("no shim listening on {}: {e}", path.display())))
            }
            Err(e) => Err(Error::io(format!("connect {}", path.display()), e)),
        }
    }

    /// Read and write timeout for every following call; `None` blocks
    /// (right for `wait`, which lasts as long as the container).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.sock.set_read_timeout(timeout).map_err(|e| Error::io("set timeout", e))?;
        self.sock.set_write_timeout(timeout).map_err(|e| Error::io("set timeout", e))
    }

    /// Sends any request and reads its response; error responses become `Err`.
    pub fn request(&mut self, req: &Request) -> Result<Response> {
        self.sock.write_all(&req.encode()).map_err(|e| Error::io(format!("send {}", req.op()), e))?;
        let line = self.read_line()?;
        Response::decode(&line)?.into_result()
    }

    /// Reads one response line without consuming anything after it: with
    /// MSG_PEEK, so the bytes of a following stream stay in the socket for
    /// whoever takes it over.
    fn read_line(&mut self) -> Result<Vec<u8>> {
        let mut line = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n = unsafe { libc::recv(self.sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_PEEK) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == IoKind::Interrupted {
                    continue;
                }
                return Err(Error::io("read shim response", e));
            }
            if n == 0 {
                return Err(Error::Protocol("shim closed the connection".into()));
            }
            let n = n as usize;
            let take = buf[..n].iter().position(|&b| b == b'\n').map(|p| p + 1);
            let count = take.unwrap_or(n);
            self.sock.read_exact(&mut buf[..count]).map_err(|e| Error::io("read shim response", e))?;
            line.extend_from_slice(&buf[..count]);
            if take.is_some() {
                line.pop();
                return Ok(line);
            }
            if line.len() > MAX_LINE {
                return Err(Error::Protocol("response line too long".into()));
            }
        }
    }

    /// Protocol version check and the container's state.
    pub fn hello(&mut self) -> Result<HelloInfo> {
        match self.request(&Request::Hello)? {
            Response::Hello(h) if h.version == PROTOCOL_VERSION => Ok(h),
            Response::Hello(h) => Err(Error::Protocol(format!(
                "shim speaks protocol version {}, this client {PROTOCOL_VERSION}",
                h.version
            ))),
            other => Err(unexpected(other)),
        }
    }

    /// Starts a container spawned with `no_start`; returns its pid.
    pub fn start(&mut self) -> Result<i32> {
        match self.request(&Request::Start)? {
            Response::Started { pid } => Ok(pid),
            other => Err(unexpected(other)),
        }
    }

    /// Attaches to the container's stdio.
    pub fn attach(mut self, stdin: bool, stdout: bool, stderr: bool) -> Result<Stream> {
        let pid = self.hello()?.pid;
        match self.request(&Request::Attach { stdin, stdout, stderr })? {
            Response::Attached { tty } => Ok(Stream { stream: self.sock, tty, pid }),
            other => Err(unexpected(other)),
        }
    }

    /// Starts an exec and streams its stdio (`req.detach` must be false).
    /// When the stream ends, [`ShimClient::exec_wait`] on another connection
    /// returns its exit code at once.
    pub fn exec(mut self, req: ExecRequest) -> Result<Stream> {
        if req.detach {
            return Err(Error::InvalidArgument("exec: use exec_detached for a detached exec".into()));
        }
        match self.request(&Request::Exec(req))? {
            Response::ExecStarted { pid, tty } => Ok(Stream { stream: self.sock, tty, pid }),
            other => Err(unexpected(other)),
        }
    }

    /// Starts an exec whose output is discarded (Docker's `exec -d`); returns its pid.
    pub fn exec_detached(&mut self, mut req: ExecRequest) -> Result<i32> {
        req.detach = true;
        match self.request(&Request::Exec(req))? {
            Response::ExecStarted { pid, .. } => Ok(pid),
            other => Err(unexpected(other)),
        }
    }

    /// Docker's exec inspect: pid, running, exit code.
    pub fn exec_state(&mut self, id: &str) -> Result<ExecStatus> {
        self.exec_status(Request::ExecState { id: id.into() })
    }

    /// Blocks until the exec has exited and its output is drained.
    pub fn exec_wait(&mut self, id: &str) -> Result<ExecStatus> {
        self.exec_status(Request::ExecWait { id: id.into() })
    }

    fn exec_status(&mut self, req: Request) -> Result<ExecStatus> {
        match self.request(&req)? {
            Response::ExecStatus(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Sets the terminal size of the container (`exec_id: None`) or an exec.
    pub fn resize(&mut self, exec_id: Option<&str>, width: u16, height: u16) -> Result<()> {
        self.done(Request::Resize { exec_id: exec_id.map(str::to_string), width, height })
    }

    /// `runtime kill [--all] <id> <signal>`.
    pub fn kill(&mut self, signal: i32, all: bool) -> Result<()> {
        self.done(Request::Kill { exec_id: None, signal, all })
    }

    /// Signals an exec's process.
    pub fn kill_exec(&mut self, exec_id: &str, signal: i32) -> Result<()> {
        self.done(Request::Kill { exec_id: Some(exec_id.into()), signal, all: false })
    }

    fn done(&mut self, req: Request) -> Result<()> {
        match self.request(&req)? {
            Response::Done => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Blocks until the container has exited and the record is on disk.
    pub fn wait(&mut self) -> Result<ExitRecord> {
        self.exit(Request::Wait)
    }

    /// After the exit: the shim deletes the runtime state (if still there),
    /// removes its files including `exit.json`, and quits.
    pub fn shutdown(&mut self) -> Result<ExitRecord> {
        self.exit(Request::Shutdown)
    }

    fn exit(&mut self, req: Request) -> Result<ExitRecord> {
        match self.request(&req)? {
            Response::Exit(rec) => Ok(rec),
            other => Err(unexpected(other)),
        }
    }

    /// The underlying socket.
    pub fn into_stream(self) -> UnixStream {
        self.sock
    }
}

fn unexpected(resp: Response) -> Error {
    Error::Protocol(format!("unexpected response {:?}", String::from_utf8_lossy(resp.encode().trim_ascii_end())))
}
