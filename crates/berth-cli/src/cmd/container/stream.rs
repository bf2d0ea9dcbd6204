//! Moving bytes over a hijacked attach/exec connection, as docker-cli's
//! `hijackedIOStreamer` does: output copied raw (TTY) or demultiplexed to
//! stdout/stderr; stdin copied in, watched for the detach sequence when in a
//! TTY, and half-closed on EOF so the container sees its stdin end while its
//! output keeps coming. Also the companions of a stream: forwarding signals
//! (`--sig-proxy`), keeping the remote TTY's size in step (`resize`), and the
//! `wait` request that yields the exit status.

use std::io::Write;

use anyhow::Result;
use berth_client::hyper::Method;
use berth_client::stdcopy::{Demuxer, Stream};
use berth_client::{Client, Hijacked};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::tty;

/// Which streams are attached, and how.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub tty: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The escape sequence that detaches (only watched with a TTY and stdin).
    pub detach_keys: Vec<u8>,
}

/// How a stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Output reached EOF (or input ended and nothing else was attached).
    Done,
    /// The user typed the detach sequence.
    Detached,
}

/// moby/term's escape proxy over chunks: bytes that might start the escape
/// sequence are held back until it is clear whether they do.
#[derive(Debug)]
pub struct EscapeProxy {
    keys: Vec<u8>,
    pos: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> Self {
        Self { keys, pos: 0 }
    }

    /// Returns the bytes to forward and whether the sequence completed
    /// (nothing after it is forwarded).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (input.to_vec(), false);
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.pos] {
                self.pos += 1;
                if self.pos == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            if self.pos > 0 {
                out.extend_from_slice(&self.keys[..self.pos]);
                self.pos = 0;
                if b == self.keys[0] {
                    self.pos = 1;
                    if self.keys.len() == 1 {
                        return (out, true);
                    }
                    continue;
                }
            }
            out.push(b);
        }
        (out, false)
    }
}

/// Reads the process's stdin on a plain thread (a blocking read in tokio's
/// pool would hold up runtime shutdown until the user pressed a key); the
/// thread ends at EOF or when the receiver is gone, and never outlives the
/// process's exit.
fn stdin_chunks() -> mpsc::Receiver<std::io::Result<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: reading into an owned buffer of the given length.
            let n = unsafe { libc::read(tty::STDIN, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                let _ = tx.blocking_send(Err(e));
                return;
            }
            if n == 0 || tx.blocking_send(Ok(buf[..n as usize].to_vec())).is_err() {
                return;
            }
        }
    });
    rx
}

/// Writes container output; a failure reads as Go's (`write /dev/stdout:
/// broken pipe`), which docker prints when its output is closed under it.
pub fn write_out(stream: Stream, data: &[u8]) -> std::io::Result<()> {
    let (r, name) = match stream {
        Stream::Stdout => {
            let mut o = std::io::stdout().lock();
            (o.write_all(data).and_then(|_| o.flush()), "/dev/stdout")
        }
        Stream::Stderr => {
            let mut e = std::io::stderr().lock();
            (e.write_all(data).and_then(|_| e.flush()), "/dev/stderr")
        }
    };
    r.map_err(|e| std::io::Error::new(e.kind(), format!("write {name}: {}", super::values::go_io_error(&e))))
}

/// Streams until the output ends, the input ends with nothing to wait for,
/// or the user detaches. Raw mode (TTY with stdin) is on for the duration.
pub async fn stream(h: Hijacked, cfg: StreamConfig) -> Result<Ended> {
    let raw = if cfg.tty && cfg.stdin {
        Some(
            tty::RawMode::enable(&[tty::STDIN, tty::STDOUT])
                .map_err(|e| anyhow::anyhow!("unable to set IO streams as raw terminal: {e}"))?,
        )
    } else {
        None
    };
    let Hijacked { mut reader, mut writer, .. } = h;
    let has_output = cfg.stdout || cfg.stderr;

    let output = async {
        let mut buf = vec![0u8; 32 * 1024];
        let mut demux = Demuxer::new();
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            if cfg.tty {
                // With a TTY the container's stderr is part of its terminal output.
                if has_output {
                    write_out(Stream::Stdout, &buf[..n])?;
                }
            } else {
                demux.push(&buf[..n], &mut |s, b| match s {
                    Stream::Stdout if cfg.stdout => write_out(s, b),
                    Stream::Stderr if cfg.stderr => write_out(s, b),
                    _ => Ok(()),
                })?;
            }
        }
        // Restore the terminal as soon as the connection ends, so anything
        // printed next reads normally.
        tty::restore();
        Ok::<(), std::io::Error>(())
    };

    let input = async {
        if cfg.stdin {
            let mut rx = stdin_chunks();
            let keys = if cfg.tty { cfg.detach_keys.clone() } else { Vec::new() };
            let mut proxy = EscapeProxy::new(keys);
            while let Some(chunk) = rx.recv().await {
                let Ok(chunk) = chunk else { break };
                let (data, detached) = proxy.feed(&chunk);
                if !data.is_empty() && writer.write_all(&data).await.is_err() {
                    break;
                }
                if detached {
                    tty::restore();
                    return Ended::Detached;
                }
            }
            tty::restore();
        }
        // Half-close: the daemon closes the container's stdin and goes on
        // sending its output.
        let _ = writer.shutdown().await;
        Ended::Done
    };

    tokio::pin!(output);
    tokio::pin!(input);
    let result = tokio::select! {
        r = &mut output => r.map(|_| Ended::Done).map_err(anyhow::Error::from),
        e = &mut input => match e {
            Ended::Detached => Ok(Ended::Detached),
            Ended::Done if has_output => output.await.map(|_| Ended::Done).map_err(anyhow::Error::from),
            Ended::Done => Ok(Ended::Done),
        },
    };
    drop(raw);
    result
}

/// Signals forwarded by `--sig-proxy` (docker forwards all but SIGCHLD,
/// SIGPIPE and the Go runtime's SIGURG; window changes are handled by resize).
const PROXIED: [(i32, &str); 10] = [
    (libc::SIGHUP, "HUP"),
    (libc::SIGINT, "INT"),
    (libc::SIGQUIT, "QUIT"),
    (libc::SIGUSR1, "USR1"),
    (libc::SIGUSR2, "USR2"),
    (libc::SIGTERM, "TERM"),
    (libc::SIGALRM, "ALRM"),
    (libc::SIGTSTP, "TSTP"),
    (libc::SIGCONT, "CONT"),
    (libc::SIGXCPU, "XCPU"),
];

/// docker's `ForwardAllSignals`: each signal the CLI receives is sent to the
/// container with `POST /containers/{id}/kill?signal=`.
pub fn forward_signals(client: Client, id: String) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
    for (num, name) in PROXIED {
        let Ok(mut s) = signal(SignalKind::from_raw(num)) else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(name).is_err() {
                    return;
                }
            }
        });
    }
    tokio::spawn(async move {
        while let Some(name) = rx.recv().await {
            let path = format!("/containers/{}/kill?signal={name}", super::seg(&id));
            let _ = super::call(&client, Method::POST, &path).await;
        }
    })
}

/// Without `--sig-proxy`, a terminating signal must still put a raw
/// terminal back before the CLI dies (docker cancels its context, which
/// restores the terminal on the way out).
pub fn restore_on_signals() {
    use tokio::signal::unix::{signal, SignalKind};
    for num in [libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGTERM] {
        let Ok(mut s) = signal(SignalKind::from_raw(num)) else {
            continue;
        };
        tokio::spawn(async move {
            if s.recv().await.is_some() {
                tty::restore();
                std::process::exit(128 + num);
            }
        });
    }
}

async fn resize_once(client: &Client, path_prefix: &str, h: u16, w: u16) -> bool {
    if h == 0 && w == 0 {
        return true;
    }
    super::call(client, Method::POST, &format!("{path_prefix}/resize?h={h}&w={w}")).await.is_ok()
}

/// docker's `MonitorTtySize`: size the remote TTY like the local one now
/// (retrying briefly, as the process may not be up yet) and on every SIGWINCH.
/// `path_prefix` is `/containers/{id}` or `/exec/{id}`; `bump` first sends a
/// size one larger, as `docker attach` does, so the program redraws.
pub fn monitor_size(client: Client, path_prefix: String, bump: bool) {
    tokio::spawn(async move {
        let (h, w) = tty::size(tty::STDOUT);
        if bump {
            let _ = resize_once(&client, &path_prefix, h.saturating_add(1), w.saturating_add(1)).await;
        }
        if !resize_once(&client, &path_prefix, h, w).await {
            let mut ok = false;
            for retry in 0..10u64 {
                tokio::time::sleep(std::time::Duration::from_millis((retry + 1) * 10)).await;
                let (h, w) = tty::size(tty::STDOUT);
                if resize_once(&client, &path_prefix, h, w).await {
                    ok = true;
                    break;
                }
            }
            if !ok {
                eprintln!("failed to resize tty, using default size");
            }
        }
        let Ok(mut winch) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            let (h, w) = tty::size(tty::STDOUT);
            let _ = resize_once(&client, &path_prefix, h, w).await;
        }
    });
}

type WaitResponse = berth_client::hyper::Response<berth_client::hyper::body::Incoming>;

/// How long to hold `start` back for the wait response's headers. A daemon
/// that flushes them at once (dockerd does; berth's design requires it) costs
/// nothing; one that holds them until the exit must not deadlock the CLI, so
/// after this grace start goes out anyway — docker's CLI never waits at all.
const WAIT_HEADERS_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

enum WaitState {
    Ready(WaitResponse),
    Pending(tokio::task::JoinHandle<std::result::Result<WaitResponse, berth_client::Error>>),
}

/// A `POST /containers/{id}/wait` sent ahead of `start`. Once its response
/// headers have arrived the daemon has registered the waiter, so the start
/// that follows cannot race past it. Await [`Waiter::status`] for the exit code.
pub struct Waiter {
    state: WaitState,
}

impl Waiter {
    pub async fn new(client: &Client, id: &str, condition: &str) -> std::result::Result<Waiter, berth_client::Error> {
        let q = if condition.is_empty() { String::new() } else { format!("?condition={condition}") };
        let path = format!("/containers/{}/wait{q}", super::seg(id));
        let c = client.clone();
        let mut handle = tokio::spawn(async move { c.request(Method::POST, &path, berth_client::empty(), &[]).await });
        match tokio::time::timeout(WAIT_HEADERS_GRACE, &mut handle).await {
            Ok(joined) => {
                let response = joined.map_err(|e| berth_client::Error::Http(e.to_string()))??;
                Ok(Waiter { state: WaitState::Ready(response) })
            }
            Err(_) => Ok(Waiter { state: WaitState::Pending(handle) }),
        }
    }

    async fn body(self) -> std::result::Result<serde_json::Value, berth_client::Error> {
        let response = match self.state {
            WaitState::Ready(r) => r,
            WaitState::Pending(h) => h.await.map_err(|e| berth_client::Error::Http(e.to_string()))??,
        };
        berth_client::read_json::<serde_json::Value>(response).await
    }

    /// The exit status; 125 (after docker's message) when the wait failed.
    pub async fn status(self) -> i32 {
        match self.body().await {
            Ok(v) => {
                if let Some(msg) = v.pointer("/Error/Message").and_then(|m| m.as_str()).filter(|m| !m.is_empty()) {
                    eprintln!("Error waiting for container: {msg}");
                    return 125;
                }
                v.get("StatusCode").and_then(serde_json::Value::as_i64).unwrap_or(0) as i32
            }
            Err(e) => {
                eprintln!("error waiting for container: {}", super::client_error_text(&e));
                125
            }
        }
    }

    /// The raw result for `docker wait`/`attach`: the status code, or the
    /// daemon's error message.
    pub async fn result(self) -> std::result::Result<i64, String> {
        match self.body().await {
            Ok(v) => {
                if let Some(msg) = v.pointer("/Error/Message").and_then(|m| m.as_str()).filter(|m| !m.is_empty()) {
                    return Err(msg.to_string());
                }
                Ok(v.get("StatusCode").and_then(serde_json::Value::as_i64).unwrap_or(0))
            }
            Err(e) => Err(super::client_error_text(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(keys: &[u8], chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut p = EscapeProxy::new(keys.to_vec());
        let mut out = Vec::new();
        for c in chunks {
            let (d, det) = p.feed(c);
            out.extend(d);
            if det {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn escape_sequence_detection() {
        let keys = tty::DEFAULT_DETACH_KEYS;
        assert_eq!(feed_all(&keys, &[b"abc"]), (b"abc".to_vec(), false));
        assert_eq!(feed_all(&keys, &[b"ab\x10\x11cd"]), (b"ab".to_vec(), true));
        // Split across reads.
        assert_eq!(feed_all(&keys, &[b"ab\x10", b"\x11"]), (b"ab".to_vec(), true));
        // A lone ctrl-p is held, then released when the next byte is not ctrl-q.
        assert_eq!(feed_all(&keys, &[b"a\x10", b"b"]), (b"a\x10b".to_vec(), false));
        // ctrl-p ctrl-p ctrl-q still detaches.
        assert_eq!(feed_all(&keys, &[b"\x10\x10\x11"]), (b"\x10".to_vec(), true));
        // A single-key sequence.
        assert_eq!(feed_all(&[1], &[b"xy\x01z"]), (b"xy".to_vec(), true));
        // No keys: everything passes.
        assert_eq!(feed_all(&[], &[b"\x10\x11"]), (b"\x10\x11".to_vec(), false));
    }
}
