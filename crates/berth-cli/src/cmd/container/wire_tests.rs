//! The wire behaviour of `run`, `exec` and friends against a small fake
//! daemon on a unix socket: which requests go out, in which order, and how
//! the hijacked stream is used (demultiplexed output, half-close on EOF).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_client::stdcopy::frame;
use clap::{Args, FromArgMatches};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::cmd::Ctx;
use crate::connect::Target;

#[derive(Default)]
struct Log {
    requests: Vec<String>,
    bodies: Vec<String>,
    /// The attach connection saw the client's half-close.
    attach_eof: bool,
}

struct Fake {
    log: Arc<Mutex<Log>>,
    started: watch::Sender<bool>,
    exit_code: i64,
    /// Answer `wait` only once the container started (a daemon that does not
    /// flush the headers early).
    hold_wait_headers: bool,
}

async fn read_request(s: &mut UnixStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    let line = head.lines().next().unwrap_or("").to_string();
    Some((line, String::from_utf8_lossy(&body).to_string()))
}

fn response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl Fake {
    async fn handle(&self, mut s: UnixStream) {
        while let Some((line, body)) = read_request(&mut s).await {
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            {
                let mut l = self.log.lock().unwrap();
                l.requests.push(line.split(" HTTP/").next().unwrap_or("").to_string());
                l.bodies.push(body.clone());
            }
            if path.starts_with("/_ping") {
                let _ = s.write_all(&response("200 OK", "OK")).await;
            } else if path.contains("/containers/create") {
                let _ = s.write_all(&response("201 Created", r#"{"Id":"c0ffee","Warnings":[]}"#)).await;
            } else if path.contains("/attach") || (path.starts_with("/v1.47/exec/") && path.ends_with("/start")) {
                let _ = s
                    .write_all(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
                    .await;
                if path.contains("/attach") {
                    let _ = self.started.subscribe().wait_for(|s| *s).await;
                }
                let mut out = frame(1, b"hello out\n");
                out.extend(frame(2, b"hello err\n"));
                let _ = s.write_all(&out).await;
                // Wait for the client's half-close, then end the stream.
                let mut rest = Vec::new();
                let eof = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await.is_ok();
                self.log.lock().unwrap().attach_eof = eof;
                return;
            } else if path.contains("/wait") {
                if self.hold_wait_headers {
                    let _ = self.started.subscribe().wait_for(|s| *s).await;
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                    )
                    .await;
                let _ = self.started.subscribe().wait_for(|s| *s).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let b = format!("{{\"StatusCode\":{},\"Error\":null}}\n", self.exit_code);
                let _ = s.write_all(format!("{:x}\r\n{b}\r\n0\r\n\r\n", b.len()).as_bytes()).await;
                return;
            } else if path.ends_with("/start") && path.contains("/containers/") {
                self.started.send_replace(true);
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            } else if path.contains("/exec") && path.ends_with("/exec") {
                let _ = s.write_all(&response("201 Created", r#"{"Id":"e1"}"#)).await;
            } else if path.starts_with("/v1.47/exec/") && path.ends_with("/json") {
                let _ = s.write_all(&response("200 OK", &format!(r#"{{"ExitCode":{}}}"#, self.exit_code))).await;
            } else if path.contains("/containers/web/json") {
                let _ = s.write_all(&response("200 OK", r#"{"Id":"c0ffee","Config":{"Tty":false}}"#)).await;
            } else {
                let _ = s.write_all(&response("404 Not Found", r#"{"message":"No such container: x"}"#)).await;
            }
        }
    }
}

async fn fake_daemon(exit_code: i64) -> (tempfile::TempDir, Ctx, Arc<Mutex<Log>>) {
    fake_daemon_with(exit_code, false).await
}

async fn fake_daemon_with(exit_code: i64, hold_wait_headers: bool) -> (tempfile::TempDir, Ctx, Arc<Mutex<Log>>) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let log = Arc::new(Mutex::new(Log::default()));
    let fake = Arc::new(Fake { log: log.clone(), started: watch::channel(false).0, exit_code, hold_wait_headers });
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let f = fake.clone();
            tokio::spawn(async move { f.handle(s).await });
        }
    });
    (dir, Ctx { target: Target { socket: sock, auto_start: false } }, log)
}

fn run_args(args: &[&str]) -> crate::cmd::container::RunArgs {
    let m = crate::cmd::container::RunArgs::augment_args(clap::Command::new("run")).try_get_matches_from(args).unwrap();
    crate::cmd::container::RunArgs::from_arg_matches(&m).unwrap()
}

#[tokio::test]
async fn run_attaches_then_waits_then_starts() {
    let (_dir, ctx, log) = fake_daemon(3).await;
    let code = crate::cmd::container::run::run(
        &ctx,
        run_args(&["run", "--sig-proxy=false", "--name", "web", "busybox", "echo", "hi"]),
    )
    .await
    .unwrap();
    assert_eq!(code, 3);
    let l = log.lock().unwrap();
    let reqs: Vec<&str> = l.requests.iter().map(String::as_str).filter(|r| !r.contains("_ping")).collect();
    assert_eq!(
        reqs,
        vec![
            "POST /v1.47/containers/create?name=web",
            "POST /v1.47/containers/c0ffee/attach?stderr=1&stdout=1&stream=1",
            "POST /v1.47/containers/c0ffee/wait?condition=next-exit",
            "POST /v1.47/containers/c0ffee/start",
        ]
    );
    assert!(l.attach_eof, "stdin not attached: the client half-closes at once, as docker does");
}

#[tokio::test]
async fn run_does_not_deadlock_when_wait_headers_are_held() {
    let (_dir, ctx, _log) = fake_daemon_with(7, true).await;
    let run = crate::cmd::container::run::run(&ctx, run_args(&["run", "--sig-proxy=false", "busybox"]));
    let code = tokio::time::timeout(Duration::from_secs(10), run).await.unwrap().unwrap();
    assert_eq!(code, 7);
}

#[tokio::test]
async fn run_detached_prints_id_after_wait_and_start() {
    let (_dir, ctx, log) = fake_daemon(0).await;
    let code = crate::cmd::container::run::run(&ctx, run_args(&["run", "-d", "--rm", "busybox"])).await.unwrap();
    assert_eq!(code, 0);
    let l = log.lock().unwrap();
    let reqs: Vec<&str> = l.requests.iter().map(String::as_str).filter(|r| !r.contains("_ping")).collect();
    assert_eq!(
        reqs,
        vec![
            "POST /v1.47/containers/create",
            "POST /v1.47/containers/c0ffee/wait?condition=removed",
            "POST /v1.47/containers/c0ffee/start",
        ]
    );
    assert!(l.bodies[1].contains(r#""AttachStdout":false"#) && l.bodies[1].contains(r#""AutoRemove":true"#));
}

#[tokio::test]
async fn exec_streams_and_reports_exit_code() {
    let (_dir, ctx, log) = fake_daemon(5).await;
    let m = crate::cmd::container::ExecArgs::augment_args(clap::Command::new("exec"))
        .try_get_matches_from(["exec", "-e", "A=1", "web", "cat"])
        .unwrap();
    let a = crate::cmd::container::ExecArgs::from_arg_matches(&m).unwrap();
    let code = crate::cmd::container::exec::exec(&ctx, a).await.unwrap();
    assert_eq!(code, 5);
    let l = log.lock().unwrap();
    let reqs: Vec<&str> = l.requests.iter().map(String::as_str).filter(|r| !r.contains("_ping")).collect();
    assert_eq!(
        reqs,
        vec![
            "GET /v1.47/containers/web/json",
            "POST /v1.47/containers/web/exec",
            "POST /v1.47/exec/e1/start",
            "GET /v1.47/exec/e1/json",
        ]
    );
    assert_eq!(l.bodies[3], r#"{"Detach":false,"Tty":false}"#);
}

#[tokio::test]
async fn daemon_errors_print_and_exit_1() {
    let (_dir, ctx, _log) = fake_daemon(0).await;
    let m = crate::cmd::container::KillArgs::augment_args(clap::Command::new("kill"))
        .try_get_matches_from(["kill", "x"])
        .unwrap();
    let a = crate::cmd::container::KillArgs::from_arg_matches(&m).unwrap();
    assert_eq!(crate::cmd::container::manage::kill(&ctx, a).await.unwrap(), 1);
}
