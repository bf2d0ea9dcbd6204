//! The shim's wire protocol: message types and framing, with no I/O.
//!
//! Everything here works on byte slices so that the blocking
//! [`crate::client::ShimClient`] and an async caller (the daemon, on tokio)
//! share one encoder and decoder. The protocol itself is described in the
//! crate documentation.

use crate::error::{Error, Result};
use crate::json::{self, ObjWriter, Value};
use berth_error::ErrorKind;
use std::io::Read;

/// Version spoken by this crate. A shim answers `hello` with its version; a
/// client refuses a shim whose version differs (both are installed together,
/// but a shim outlives a daemon upgrade).
pub const PROTOCOL_VERSION: u32 = 1;
/// Name of the control socket inside the state directory.
pub const SOCKET_NAME: &str = "shim.sock";
/// Name of the exit record inside the state directory.
pub const EXIT_FILE: &str = "exit.json";
/// Name of the file holding the shim's pid inside the state directory.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// Longest request or response line accepted (the OCI process of an exec is
/// the only large message).
pub const MAX_LINE: usize = 1 << 20;

/// Stream ids of Docker's multiplexed attach format (`stdcopy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamId {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
}

impl StreamId {
    /// The `stream` value of a json-file log entry.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamId::Stdin => "stdin",
            StreamId::Stdout => "stdout",
            StreamId::Stderr => "stderr",
        }
    }
}

/// The 8-byte header of one multiplexed frame: stream id, three zero bytes,
/// big-endian payload length (Docker's `stdcopy` format, passed unchanged to
/// API clients).
pub fn frame_header(stream: StreamId, len: u32) -> [u8; 8] {
    let l = len.to_be_bytes();
    [stream as u8, 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Decodes a frame header into its stream and payload length.
pub fn parse_frame_header(h: &[u8; 8]) -> Result<(StreamId, u32)> {
    let stream = match h[0] {
        0 => StreamId::Stdin,
        1 => StreamId::Stdout,
        2 => StreamId::Stderr,
        other => return Err(Error::Protocol(format!("unknown stream id {other} in frame header"))),
    };
    Ok((stream, u32::from_be_bytes([h[4], h[5], h[6], h[7]])))
}

/// Reads one multiplexed frame; `Ok(None)` at a clean end of stream.
pub fn read_frame<R: Read>(r: &mut R) -> Result<Option<(StreamId, Vec<u8>)>> {
    let mut h = [0u8; 8];
    let mut got = 0;
    while got < h.len() {
        match r.read(&mut h[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(Error::Protocol("stream ended inside a frame header".into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("read frame header", e)),
        }
    }
    let (stream, len) = parse_frame_header(&h)?;
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).map_err(|e| Error::io("read frame payload", e))?;
    Ok(Some((stream, payload)))
}

/// What the shim writes to `exit.json` and returns from `wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitRecord {
    /// The exit status, or 128+signal when the process was killed (as Docker reports it).
    pub exit_code: i32,
    /// RFC 3339 UTC time with nanoseconds at which the shim reaped the process.
    pub exited_at: String,
    /// Whether the container's memory cgroup recorded an OOM kill.
    pub oom_killed: bool,
}

impl ExitRecord {
    /// Encodes the record as one JSON object (no trailing newline).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn write(&self, out: &mut Vec<u8>) {
        ObjWriter::new(out)
            .int("exit_code", self.exit_code.into())
            .str("exited_at", &self.exited_at)
            .bool("oom_killed", self.oom_killed)
            .finish();
    }

    /// Decodes a record written by [`ExitRecord::to_json`] (e.g. `exit.json`).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let v = json::parse(bytes).map_err(|e| Error::Protocol(format!("exit record: {e}")))?;
        Self::from_value(&v)
    }

    fn from_value(v: &Value) -> Result<Self> {
        Ok(ExitRecord {
            exit_code: int_field(v, "exit_code")? as i32,
            exited_at: str_field(v, "exited_at")?.to_string(),
            oom_killed: v.get("oom_killed").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// Lifecycle state of the container as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `runtime create` done, waiting for a `start` request (spawned with `--no-start`).
    Created,
    Running,
    Exited,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "created" => Ok(Status::Created),
            "running" => Ok(Status::Running),
            "exited" => Ok(Status::Exited),
            other => Err(Error::Protocol(format!("unknown status {other:?}"))),
        }
    }
}

/// An `exec` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// Caller-chosen id (Docker's exec id), `[A-Za-z0-9_.-]`, at most 128 bytes.
    pub id: String,
    /// The OCI runtime-spec `process` object as JSON text. Its `terminal`
    /// member is overwritten with `tty`.
    pub process: String,
    /// Allocate a pseudo-terminal (output is then raw, not multiplexed).
    pub tty: bool,
    /// Connect the caller's bytes to the process's stdin.
    pub stdin: bool,
    /// Answer at once and keep the connection in request mode; the output is
    /// discarded (Docker's `exec -d`).
    pub detach: bool,
}

/// A request, one JSON line from client to shim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Hello,
    /// Run `runtime start` on a container created with `--no-start`.
    Start,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Exec(ExecRequest),
    ExecState {
        id: String,
    },
    ExecWait {
        id: String,
    },
    Resize {
        exec_id: Option<String>,
        width: u16,
        height: u16,
    },
    /// `runtime kill [--all]` for the container, or kill(2) of an exec's process.
    Kill {
        exec_id: Option<String>,
        signal: i32,
        all: bool,
    },
    Wait,
    Shutdown,
}

impl Request {
    /// The `op` name on the wire.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Hello => "hello",
            Request::Start => "start",
            Request::Attach { .. } => "attach",
            Request::Exec(_) => "exec",
            Request::ExecState { .. } => "exec-state",
            Request::ExecWait { .. } => "exec-wait",
            Request::Resize { .. } => "resize",
            Request::Kill { .. } => "kill",
            Request::Wait => "wait",
            Request::Shutdown => "shutdown",
        }
    }

    /// Encodes the request as one line, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let mut w = ObjWriter::new(&mut out);
        w.str("op", self.op());
        match self {
            Request::Hello => {
                w.int("version", PROTOCOL_VERSION.into());
            }
            Request::Start | Request::Wait | Request::Shutdown => {}
            Request::Attach { stdin, stdout, stderr } => {
                w.bool("stdin", *stdin).bool("stdout", *stdout).bool("stderr", *stderr);
            }
            Request::Exec(e) => {
                // Raw CR/LF can only be insignificant whitespace in valid JSON
                // (inside strings they must be escaped), so flattening them
                // keeps a pretty-printed document on one protocol line.
                let flat: String =
                    e.process.trim().chars().map(|c| if c == '\n' || c == '\r' { ' ' } else { c }).collect();
                w.str("id", &e.id).raw("process", &flat).bool("tty", e.tty);
                w.bool("stdin", e.stdin).bool("detach", e.detach);
            }
            Request::ExecState { id } | Request::ExecWait { id } => {
                w.str("id", id);
            }
            Request::Resize { exec_id, width, height } => {
                w.opt_str("exec_id", exec_id.as_deref());
                w.int("width", (*width).into()).int("height", (*height).into());
            }
            Request::Kill { exec_id, signal, all } => {
                w.opt_str("exec_id", exec_id.as_deref());
                w.int("signal", (*signal).into()).bool("all", *all);
            }
        }
        w.finish();
        out.push(b'\n');
        out
    }

    /// Decodes one request line (with or without its newline).
    pub fn decode(line: &[u8]) -> Result<Self> {
        let v = json::parse(line).map_err(|e| Error::InvalidArgument(format!("request: {e}")))?;
        let op = v
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::InvalidArgument("request without \"op\"".into()))?;
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        let opt_id = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let req_str = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| Error::InvalidArgument(format!("{op}: missing string \"{k}\"")))
        };
        Ok(match op {
            "hello" => Request::Hello,
            "start" => Request::Start,
            "wait" => Request::Wait,
            "shutdown" => Request::Shutdown,
            "attach" => Request::Attach { stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr") },
            "exec" => {
                let process = match v.get("process") {
                    Some(p @ Value::Object(_)) => p.to_string(),
                    _ => return Err(Error::InvalidArgument("exec: \"process\" must be an object".into())),
                };
                Request::Exec(ExecRequest {
                    id: req_str("id")?,
                    process,
                    tty: flag("tty"),
                    stdin: flag("stdin"),
                    detach: flag("detach"),
                })
            }
            "exec-state" => Request::ExecState { id: req_str("id")? },
            "exec-wait" => Request::ExecWait { id: req_str("id")? },
            "resize" => {
                let dim = |k: &str| {
                    v.get(k)
                        .and_then(Value::as_u64)
                        .and_then(|n| u16::try_from(n).ok())
                        .ok_or_else(|| Error::InvalidArgument(format!("resize: \"{k}\" must be 0..65535")))
                };
                Request::Resize { exec_id: opt_id("exec_id"), width: dim("width")?, height: dim("height")? }
            }
            "kill" => {
                let signal = v
                    .get("signal")
                    .and_then(Value::as_i64)
                    .filter(|s| (1..=64).contains(s))
                    .ok_or_else(|| Error::InvalidArgument("kill: \"signal\" must be 1..64".into()))?;
                Request::Kill { exec_id: opt_id("exec_id"), signal: signal as i32, all: flag("all") }
            }
            other => return Err(Error::InvalidArgument(format!("unknown op {other:?}"))),
        })
    }
}

/// Answer to `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloInfo {
    pub version: u32,
    pub id: String,
    pub shim_pid: i32,
    /// The container's init pid as seen from the host.
    pub pid: i32,
    pub status: Status,
    pub tty: bool,
    /// Whether the container was started with an open stdin.
    pub stdin: bool,
    /// Present once the container has exited.
    pub exit: Option<ExitRecord>,
}

/// State of one exec, the answer to `exec-state` and `exec-wait`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStatus {
    pub id: String,
    pub pid: i32,
    pub running: bool,
    /// Set once the process has been reaped (128+signal for a signal death).
    pub exit_code: Option<i32>,
}

/// A response, one JSON line from shim to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Hello(HelloInfo),
    /// `start` succeeded.
    Started {
        pid: i32,
    },
    /// `attach` succeeded; the connection is now a stream.
    Attached {
        tty: bool,
    },
    /// `exec` succeeded; unless detached, the connection is now a stream.
    ExecStarted {
        pid: i32,
        tty: bool,
    },
    ExecStatus(ExecStatus),
    /// `resize` and `kill` succeeded.
    Done,
    /// `wait` and `shutdown`: the exit record.
    Exit(ExitRecord),
    Error {
        kind: ErrorKind,
        message: String,
    },
}

impl Response {
    /// The error response for `err`.
    pub fn from_error(err: &Error) -> Self {
        Response::Error { kind: err.kind(), message: err.to_string() }
    }

    /// Encodes the response as one line, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        let mut w = ObjWriter::new(&mut out);
        match self {
            Response::Hello(h) => {
                w.str("type", "hello").int("version", h.version.into()).str("id", &h.id);
                w.int("shim_pid", h.shim_pid.into()).int("pid", h.pid.into()).str("status", h.status.as_str());
                w.bool("tty", h.tty).bool("stdin", h.stdin);
                match &h.exit {
                    Some(e) => w.raw("exit", &e.to_json()),
                    None => w.raw("exit", "null"),
                };
            }
            Response::Started { pid } => {
                w.str("type", "started").int("pid", (*pid).into());
            }
            Response::Attached { tty } => {
                w.str("type", "attached").bool("tty", *tty);
            }
            Response::ExecStarted { pid, tty } => {
                w.str("type", "exec-started").int("pid", (*pid).into()).bool("tty", *tty);
            }
            Response::ExecStatus(s) => {
                w.str("type", "exec-status").str("id", &s.id).int("pid", s.pid.into()).bool("running", s.running);
                match s.exit_code {
                    Some(c) => w.int("exit_code", c.into()),
                    None => w.raw("exit_code", "null"),
                };
            }
            Response::Done => {
                w.str("type", "done");
            }
            Response::Exit(e) => {
                w.str("type", "exit").raw("exit", &e.to_json());
            }
            Response::Error { kind, message } => {
                w.str("type", "error").str("kind", kind.as_str()).str("message", message);
            }
        }
        w.finish();
        out.push(b'\n');
        out
    }

    /// Decodes one response line (with or without its newline).
    pub fn decode(line: &[u8]) -> Result<Self> {
        let v = json::parse(line).map_err(|e| Error::Protocol(format!("response: {e}")))?;
        let ty = str_field(&v, "type")?;
        let flag = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(false);
        Ok(match ty {
            "hello" => Response::Hello(HelloInfo {
                version: int_field(&v, "version")? as u32,
                id: str_field(&v, "id")?.to_string(),
                shim_pid: int_field(&v, "shim_pid")? as i32,
                pid: int_field(&v, "pid")? as i32,
                status: Status::parse(str_field(&v, "status")?)?,
                tty: flag("tty"),
                stdin: flag("stdin"),
                exit: match v.get("exit") {
                    Some(e) if !e.is_null() => Some(ExitRecord::from_value(e)?),
                    _ => None,
                },
            }),
            "started" => Response::Started { pid: int_field(&v, "pid")? as i32 },
            "attached" => Response::Attached { tty: flag("tty") },
            "exec-started" => Response::ExecStarted { pid: int_field(&v, "pid")? as i32, tty: flag("tty") },
            "exec-status" => Response::ExecStatus(ExecStatus {
                id: str_field(&v, "id")?.to_string(),
                pid: int_field(&v, "pid")? as i32,
                running: flag("running"),
                exit_code: v.get("exit_code").and_then(Value::as_i64).map(|c| c as i32),
            }),
            "done" => Response::Done,
            "exit" => Response::Exit(ExitRecord::from_value(
                v.get("exit").ok_or_else(|| Error::Protocol("exit response without \"exit\"".into()))?,
            )?),
            "error" => Response::Error {
                kind: kind_from_str(v.get("kind").and_then(Value::as_str).unwrap_or("")),
                message: str_field(&v, "message")?.to_string(),
            },
            other => return Err(Error::Protocol(format!("unknown response type {other:?}"))),
        })
    }

    /// Turns an error response into `Err`, passing others through.
    pub fn into_result(self) -> Result<Self> {
        match self {
            Response::Error { kind, message } => Err(Error::Remote { kind, message }),
            other => Ok(other),
        }
    }
}

pub(crate) fn kind_from_str(s: &str) -> ErrorKind {
    [
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::InvalidArgument,
        ErrorKind::NotModified,
        ErrorKind::Unauthorized,
        ErrorKind::Unsupported,
        ErrorKind::DataLoss,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
    .unwrap_or(ErrorKind::Internal)
}

fn str_field<'a>(v: &'a Value, k: &str) -> Result<&'a str> {
    v.get(k).and_then(Value::as_str).ok_or_else(|| Error::Protocol(format!("missing string field {k:?}")))
}

fn int_field(v: &Value, k: &str) -> Result<i64> {
    v.get(k).and_then(Value::as_i64).ok_or_else(|| Error::Protocol(format!("missing integer field {k:?}")))
}

/// Splits a byte stream into protocol lines; whatever follows a line that
/// switched the connection to streaming stays available via [`LineBuffer::take_rest`].
#[derive(Debug, Default)]
pub struct LineBuffer {
    buf: Vec<u8>,
}

impl LineBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line without its newline, `Ok(None)` if none is
    /// complete yet, or an error once the pending line exceeds [`MAX_LINE`].
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(n) => {
                let mut line: Vec<u8> = self.buf.drain(..=n).collect();
                line.pop();
                Ok(Some(line))
            }
            None if self.buf.len() > MAX_LINE => Err(Error::Protocol(format!("line longer than {MAX_LINE} bytes"))),
            None => Ok(None),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Everything buffered after the last line taken.
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Docker's reading of a failed container start (moby's
/// `translateContainerdStartErr`): the exit code to record and the error
/// class. A missing executable or file is 127, a permission problem 126,
/// anything else 128; the first two are the user's configuration errors.
pub fn classify_start_error(message: &str) -> (i32, ErrorKind) {
    let m = message.to_ascii_lowercase();
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("not a directory")
    {
        (127, ErrorKind::InvalidArgument)
    } else if m.contains("permission denied") {
        (126, ErrorKind::InvalidArgument)
    } else {
        (128, ErrorKind::Internal)
    }
}

/// Checks an exec or container id before it becomes part of a file name.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let reqs = [
            Request::Hello,
            Request::Start,
            Request::Attach { stdin: true, stdout: true, stderr: false },
            Request::Exec(ExecRequest {
                id: "e1".into(),
                process: "{\"args\":[\"sh\",\"-c\",\"echo <hi>\"],\n  \"cwd\":\"/\",\"rlimits\":[{\"hard\":18446744073709551615}]}".into(),
                tty: false,
                stdin: true,
                detach: false,
            }),
            Request::ExecState { id: "e1".into() },
            Request::ExecWait { id: "e1".into() },
            Request::Resize { exec_id: None, width: 80, height: 24 },
            Request::Resize { exec_id: Some("e1".into()), width: 1, height: 2 },
            Request::Kill { exec_id: None, signal: 9, all: true },
            Request::Wait,
            Request::Shutdown,
        ];
        for r in reqs {
            let line = r.encode();
            assert_eq!(line.last(), Some(&b'\n'));
            assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
            let back = Request::decode(&line).unwrap();
            if let (Request::Exec(a), Request::Exec(b)) = (&r, &back) {
                assert_eq!(json::parse(a.process.as_bytes()).unwrap(), json::parse(b.process.as_bytes()).unwrap());
                assert_eq!((a.tty, a.stdin, &a.id), (b.tty, b.stdin, &b.id));
            } else {
                assert_eq!(back, r);
            }
        }
        assert!(Request::decode(br#"{"op":"kill","signal":0}"#).is_err());
        assert!(Request::decode(br#"{"op":"exec","id":"x","process":"no"}"#).is_err());
        assert!(Request::decode(br#"{"op":"nope"}"#).is_err());
    }

    #[test]
    fn responses_round_trip() {
        let exit = ExitRecord { exit_code: 137, exited_at: "2026-11-22T05:40:00.123456789Z".into(), oom_killed: true };
        let resps = [
            Response::Hello(HelloInfo {
                version: 1,
                id: "c".into(),
                shim_pid: 10,
                pid: 11,
                status: Status::Exited,
                tty: true,
                stdin: false,
                exit: Some(exit.clone()),
            }),
            Response::Started { pid: 5 },
            Response::Attached { tty: false },
            Response::ExecStarted { pid: 6, tty: true },
            Response::ExecStatus(ExecStatus { id: "e".into(), pid: 7, running: false, exit_code: Some(3) }),
            Response::ExecStatus(ExecStatus { id: "e".into(), pid: 7, running: true, exit_code: None }),
            Response::Done,
            Response::Exit(exit.clone()),
            Response::Error { kind: ErrorKind::Conflict, message: "container is not running".into() },
        ];
        for r in resps {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
        assert_eq!(ExitRecord::from_json(exit.to_json().as_bytes()).unwrap(), exit);
    }

    #[test]
    fn frames() {
        let h = frame_header(StreamId::Stderr, 0x0102_0304);
        assert_eq!(h, [2, 0, 0, 0, 1, 2, 3, 4]);
        assert_eq!(parse_frame_header(&h).unwrap(), (StreamId::Stderr, 0x0102_0304));
        let mut data = frame_header(StreamId::Stdout, 3).to_vec();
        data.extend_from_slice(b"hi\n");
        let mut r = &data[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((StreamId::Stdout, b"hi\n".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        assert!(parse_frame_header(&[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn line_buffer() {
        let mut lb = LineBuffer::new();
        lb.push(b"{\"op\":\"hel");
        assert_eq!(lb.next_line().unwrap(), None);
        lb.push(b"lo\"}\nrest");
        assert_eq!(lb.next_line().unwrap().unwrap(), b"{\"op\":\"hello\"}");
        assert_eq!(lb.take_rest(), b"rest");
    }

    #[test]
    fn start_errors_like_docker() {
        let (code, kind) = classify_start_error(
            "runc create failed: unable to start container process: exec: \"foo\": executable file not found in $PATH",
        );
        assert_eq!((code, kind), (127, ErrorKind::InvalidArgument));
        assert_eq!(classify_start_error("exec: permission denied").0, 126);
        assert_eq!(classify_start_error("something else").0, 128);
    }

    #[test]
    fn ids() {
        assert!(valid_id("abc-1.2_3"));
        for bad in ["", "..", "../x", "a/b", "a b", ".hidden"] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
