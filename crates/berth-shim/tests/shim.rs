//! Root integration tests: the shim driving real `runc` on a busybox bundle.
//! Each test prints a note and passes when the machine cannot run them.

mod common;

use berth_shim::client::{read_exit_record, ShimClient};
use berth_shim::protocol::{classify_start_error, ExecRequest, Status, StreamId};
use berth_shim::{spawn, Error};
use common::*;
use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

fn connect(env: &Env) -> ShimClient {
    let c = ShimClient::connect(&env.state).unwrap();
    c.set_timeout(Some(IO_TIMEOUT)).unwrap();
    c
}

#[test]
fn logs_output_and_records_exit_code() {
    let Some(env) = setup("logs", &["sh", "-c", "echo out; echo err >&2; printf partial; exit 3"], false) else {
        return;
    };
    // Created first and started by the client: a container this short could
    // otherwise be gone, with its shim, before the test connects.
    let mut o = env.opts();
    o.no_start = true;
    let res = spawn(&o).unwrap();
    assert!(res.shim_pid > 0 && res.container_pid > 0);
    let mut c = connect(&env);
    assert_eq!(c.start().unwrap(), res.container_pid);
    let rec = c.wait().unwrap();
    assert_eq!(rec.exit_code, 3);
    assert!(!rec.oom_killed);
    // The record is on disk before `wait` answers.
    let disk = read_exit_record(&env.state).unwrap().unwrap();
    assert_eq!(disk, rec);
    let hello = c.hello().unwrap();
    assert_eq!(hello.status, Status::Exited);
    assert_eq!(hello.exit, Some(rec.clone()));

    let mut entries = env.log_entries(&env.log);
    entries.sort();
    let want: Vec<(String, String)> = [("err\n", "stderr"), ("out\n", "stdout"), ("partial", "stdout")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(entries, want);

    assert_eq!(c.shutdown().unwrap(), rec);
    env.assert_clean(res.shim_pid);
}

#[test]
fn attach_stdin_round_trip_with_two_clients() {
    let Some(env) = setup("attach", &["cat"], false) else {
        return;
    };
    let mut o = env.opts();
    o.stdin = true;
    o.stdin_once = true;
    o.no_start = true;
    let res = spawn(&o).unwrap();
    assert_eq!(connect(&env).hello().unwrap().status, Status::Created);

    let a = connect(&env).attach(true, true, true).unwrap();
    let b = connect(&env).attach(false, true, true).unwrap();
    assert!(!a.tty);
    assert_eq!(a.pid, res.container_pid);
    let (mut a, mut b) = (a.stream, b.stream);
    a.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    b.set_read_timeout(Some(IO_TIMEOUT)).unwrap();

    let mut waiter = connect(&env);
    assert_eq!(waiter.start().unwrap(), res.container_pid);

    a.write_all(b"hello\n").unwrap();
    assert_eq!(read_one_frame(&mut a), (StreamId::Stdout, b"hello\n".to_vec()));
    assert_eq!(read_one_frame(&mut b), (StreamId::Stdout, b"hello\n".to_vec()));
    a.write_all(b"again\n").unwrap();
    assert_eq!(read_one_frame(&mut a), (StreamId::Stdout, b"again\n".to_vec()));

    // Half-closing ends stdin (stdin-once): cat exits, both streams end.
    a.shutdown(Shutdown::Write).unwrap();
    let (out, err) = read_frames(&mut a);
    assert!(out.is_empty() && err.is_empty());
    let (out_b, _) = read_frames(&mut b);
    assert_eq!(out_b, b"again\n");

    let rec = waiter.wait().unwrap();
    assert_eq!(rec.exit_code, 0);
    let entries = env.log_entries(&env.log);
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|(_, s)| s == "stdout"));
    waiter.shutdown().unwrap();
    env.assert_clean(res.shim_pid);
}

#[test]
fn attach_after_exit_is_a_conflict() {
    let Some(env) = setup("attachexit", &["true"], false) else {
        return;
    };
    let mut o = env.opts();
    o.no_start = true;
    let res = spawn(&o).unwrap();
    let mut c = connect(&env);
    c.start().unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 0);
    let err = connect(&env).attach(false, true, true).unwrap_err();
    assert_eq!(err.kind(), berth_error::ErrorKind::Conflict, "{err}");
    assert!(c.kill(9, false).is_err());
    c.shutdown().unwrap();
    env.assert_clean(res.shim_pid);
}

#[test]
fn tty_with_resize() {
    let Some(env) = setup("tty", &["sh", "-c", "read x; stty size; echo done"], true) else {
        return;
    };
    let mut o = env.opts();
    o.tty = true;
    o.stdin = true;
    o.no_start = true;
    let res = spawn(&o).unwrap();
    let s = connect(&env).attach(true, true, true).unwrap();
    assert!(s.tty);
    let mut s = s.stream;
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut c = connect(&env);
    c.start().unwrap();
    c.resize(None, 100, 30).unwrap();
    s.write_all(b"go\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("30 100"), "{text:?}");
    assert!(text.contains("done\r\n"), "{text:?}");
    assert_eq!(c.wait().unwrap().exit_code, 0);
    let entries = env.log_entries(&env.log);
    assert!(entries.iter().all(|(_, s)| s == "stdout"));
    assert!(entries.iter().any(|(l, _)| l == "30 100\r\n"), "{entries:?}");
    c.shutdown().unwrap();
    env.assert_clean(res.shim_pid);
}

fn exec_req(id: &str, args: &[&str], tty: bool, stdin: bool) -> ExecRequest {
    ExecRequest {
        id: id.into(),
        process: serde_json::to_string_pretty(&process_json(args, tty)).unwrap(),
        tty,
        stdin,
        detach: false,
    }
}

#[test]
fn exec_streams_exit_codes_and_kill() {
    let Some(env) = setup("exec", &["sleep", "1000"], false) else {
        return;
    };
    let res = spawn(&env.opts()).unwrap();
    let mut c = connect(&env);

    // Output and exit code.
    let s = connect(&env).exec(exec_req("e1", &["sh", "-c", "echo hi; echo oops >&2; exit 7"], false, false)).unwrap();
    assert!(!s.tty && s.pid > 0);
    let mut st = s.stream;
    st.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let (out, err) = read_frames(&mut st);
    assert_eq!((out.as_slice(), err.as_slice()), (&b"hi\n"[..], &b"oops\n"[..]));
    let status = c.exec_wait("e1").unwrap();
    assert_eq!((status.running, status.exit_code), (false, Some(7)));
    assert_eq!(c.exec_state("e1").unwrap(), status);
    assert!(c.exec_state("nope").is_err());

    // Stdin, ended by half-close.
    let s = connect(&env).exec(exec_req("e2", &["cat"], false, true)).unwrap();
    let mut st = s.stream;
    st.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    st.write_all(b"ping\n").unwrap();
    assert_eq!(read_one_frame(&mut st), (StreamId::Stdout, b"ping\n".to_vec()));
    st.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_frames(&mut st), (vec![], vec![]));
    assert_eq!(c.exec_wait("e2").unwrap().exit_code, Some(0));

    // A terminal exec with its own size.
    let s = connect(&env).exec(exec_req("e3", &["sh", "-c", "read x; stty size; exit 5"], true, true)).unwrap();
    assert!(s.tty);
    let mut st = s.stream;
    st.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.resize(Some("e3"), 81, 19).unwrap();
    st.write_all(b"\n").unwrap();
    let mut out = Vec::new();
    st.read_to_end(&mut out).unwrap();
    assert!(String::from_utf8_lossy(&out).contains("19 81"), "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(c.exec_wait("e3").unwrap().exit_code, Some(5));

    // Detached, then killed.
    let pid = c.exec_detached(exec_req("e4", &["sleep", "1000"], false, false)).unwrap();
    assert!(c.exec_state("e4").unwrap().running);
    c.kill_exec("e4", libc::SIGKILL).unwrap();
    let st = c.exec_wait("e4").unwrap();
    assert_eq!((st.pid, st.exit_code), (pid, Some(137)));
    // Duplicate ids and bad ids are refused.
    assert!(c.exec_detached(exec_req("e4", &["true"], false, false)).is_err());
    assert!(c.exec_detached(exec_req("../x", &["true"], false, false)).is_err());
    // A missing executable in an exec reports the runtime's text.
    let err = c.exec_detached(exec_req("e5", &["nonexistent-cmd"], false, false)).unwrap_err();
    assert!(err.to_string().contains("executable file not found"), "{err}");

    c.kill(libc::SIGKILL, false).unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 137);
    c.shutdown().unwrap();
    env.assert_clean(res.shim_pid);
}

#[test]
fn missing_executable_reports_runtime_error() {
    let Some(env) = setup("missing", &["foo"], false) else {
        return;
    };
    let err = spawn(&env.opts()).unwrap_err();
    let Error::Runtime(msg) = &err else { panic!("unexpected error {err:?}") };
    assert!(msg.contains(r#"exec: "foo": executable file not found in $PATH"#), "{msg}");
    assert_eq!(classify_start_error(msg).0, 127);
    assert_eq!(err.kind(), berth_error::ErrorKind::InvalidArgument);
    // Nothing left: the shim deleted the runtime state and its files.
    let left: Vec<_> = std::fs::read_dir(&env.state).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!env.runtime_root.join(&env.id).exists());
}

#[test]
fn survives_parent_sigterm_and_disconnects() {
    let Some(env) = setup("survive", &["sleep", "1000"], false) else {
        return;
    };
    let res = spawn(&env.opts()).unwrap();
    // The process the test started has exited; the shim was re-parented.
    let ppid: i32 = status_field(res.shim_pid, "PPid:").unwrap().parse().unwrap();
    assert_ne!(ppid, std::process::id() as i32);
    let sid = std::fs::read_to_string(format!("/proc/{}/stat", res.shim_pid)).unwrap();
    let fields: Vec<&str> = sid.rsplit(')').next().unwrap().split_whitespace().collect();
    assert_eq!(fields[3], res.shim_pid.to_string(), "shim is not a session leader");

    // Only the three standard streams reach the container: no shim or
    // spawner descriptor (socket, report pipe, log) leaks into it. `runtime
    // start` returns before the init has exec'd the command; wait for that.
    let pid = res.container_pid;
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap().trim() != "sleep" {
        assert!(std::time::Instant::now() < deadline, "container never exec'd");
        std::thread::sleep(Duration::from_millis(10));
    }
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| format!("{:?}", std::fs::read_link(e.path()).unwrap_or_default()))
        .collect();
    assert_eq!(fds.len(), 3, "container fds: {fds:?}");
    // Nor does the shim's signal mask (SIGTERM, SIGCHLD, … are blocked there).
    assert_eq!(status_field(pid, "SigBlk:").unwrap(), "0000000000000000");

    let ignored = u64::from_str_radix(&status_field(pid, "SigIgn:").unwrap(), 16).unwrap();
    assert_eq!(ignored & 0x7fff_ffff, 0, "standard signals ignored in the container");

    // A second shim for the same state directory is refused and leaves the
    // first one's files alone.
    let err = spawn(&env.opts()).unwrap_err();
    assert_eq!(err.kind(), berth_error::ErrorKind::Conflict, "{err}");

    let mut c = connect(&env);
    assert_eq!(c.hello().unwrap().pid, res.container_pid);
    drop(c);
    // SIGTERM to the shim stops neither it nor the container.
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(res.shim_pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(res.shim_pid) && alive(res.container_pid));
    let mut c = connect(&env);
    let h = c.hello().unwrap();
    assert_eq!((h.status, h.pid, h.shim_pid), (Status::Running, res.container_pid, res.shim_pid));
    // (SIGTERM would be ignored: `sleep` is PID 1 of its namespace.)
    c.kill(libc::SIGKILL, false).unwrap();
    drop(c);
    // With nobody connected the shim records the exit and leaves, keeping
    // only the record for a daemon that was away.
    wait_gone(res.shim_pid);
    let rec = read_exit_record(&env.state).unwrap().unwrap();
    assert_eq!(rec.exit_code, 137);
    let left: Vec<_> = std::fs::read_dir(&env.state).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("exit.json")]);
    assert!(matches!(ShimClient::connect(&env.state), Err(Error::NotFound(_))));
    assert!(!env.runtime_root.join(&env.id).exists());
}

#[test]
fn rotates_the_log() {
    let script = "i=0; while [ $i -lt 300 ]; do echo line $i; i=$((i+1)); done";
    let Some(env) = setup("rotate", &["sh", "-c", script], false) else {
        return;
    };
    let mut o = env.opts();
    o.log_max_size = Some(2048);
    o.log_max_files = Some(3);
    o.no_start = true;
    let res = spawn(&o).unwrap();
    let mut c = connect(&env);
    c.start().unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 0);
    let name = |n: u32| {
        let mut p = env.log.clone().into_os_string();
        p.push(format!(".{n}"));
        std::path::PathBuf::from(p)
    };
    for p in [env.log.clone(), name(1), name(2)] {
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len > 0 && len <= 2048, "{} is {len} bytes", p.display());
    }
    assert!(!name(3).exists());
    let cur = env.log_entries(&env.log);
    assert_eq!(cur.last().unwrap().0, "line 299\n");
    let prev = env.log_entries(&name(1));
    let n = |s: &str| s.trim().trim_start_matches("line ").parse::<u32>().unwrap();
    assert_eq!(n(&prev.last().unwrap().0) + 1, n(&cur[0].0));
    c.shutdown().unwrap();
    env.assert_clean(res.shim_pid);
}

#[test]
fn measures_shim_memory() {
    let Some(env) = setup("rss", &["sh", "-c", "while true; do echo tick; sleep 0.2; done"], false) else {
        return;
    };
    let res = spawn(&env.opts()).unwrap();
    // Let it log, attach and detach once, so the figures include the
    // steady-state working set rather than just startup.
    std::thread::sleep(Duration::from_millis(500));
    let s = connect(&env).attach(false, true, true).unwrap();
    let mut st = s.stream;
    st.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    read_one_frame(&mut st);
    drop(st);
    std::thread::sleep(Duration::from_millis(300));
    let pid = res.shim_pid;
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let roll = |k: &str| {
        rollup.lines().find(|l| l.starts_with(k)).map(|l| l[k.len()..].trim().to_string()).unwrap_or_default()
    };
    let rss_anon = status_field(pid, "RssAnon:").unwrap();
    println!(
        "shim memory: VmRSS {} (RssAnon {}, RssFile {}), Pss {}, Private_Dirty {}",
        status_field(pid, "VmRSS:").unwrap(),
        rss_anon,
        status_field(pid, "RssFile:").unwrap(),
        roll("Pss:"),
        roll("Private_Dirty:"),
    );
    let anon_kb: u64 = rss_anon.trim_end_matches(" kB").trim().parse().unwrap();
    assert!(anon_kb < 1024, "shim anonymous memory {anon_kb} kB");
    let mut c = connect(&env);
    c.kill(libc::SIGKILL, false).unwrap();
    c.wait().unwrap();
    c.shutdown().unwrap();
    env.assert_clean(pid);
}

#[test]
fn records_oom_kill() {
    let edit = |c: &mut serde_json::Value| {
        c["linux"]["resources"]["memory"] = serde_json::json!({ "limit": 32 * 1024 * 1024 });
    };
    // The shell keeps the endless output of `yes` in memory.
    let Some(env) = setup_with("oom", &["sh", "-c", "x=$(yes)"], false, edit) else {
        return;
    };
    let mut o = env.opts();
    o.no_start = true;
    let res = spawn(&o).unwrap();
    let mut c = connect(&env);
    c.start().unwrap();
    let rec = c.wait().unwrap();
    assert_eq!(rec.exit_code, 137);
    assert!(rec.oom_killed, "{rec:?}");
    c.shutdown().unwrap();
    env.assert_clean(res.shim_pid);
}

#[test]
fn stalled_attach_client_does_not_block_the_container() {
    // 100-byte lines: 50,000 log entries.
    let line = "0123456789".repeat(10);
    let script = format!("yes {} 2>/dev/null | head -c 5000000; echo end", &line[..99]);
    let Some(env) = setup("stall", &["sh", "-c", &script], false) else {
        return;
    };
    let mut o = env.opts();
    o.no_start = true;
    o.log_max_size = Some(0);
    let res = spawn(&o).unwrap();
    // Attached, never read: the shim must keep draining and logging.
    let stalled = connect(&env).attach(false, true, true).unwrap();
    let mut c = connect(&env);
    c.start().unwrap();
    let rec = c.wait().unwrap();
    assert_eq!(rec.exit_code, 0);
    let entries = env.log_entries(&env.log);
    let stderr: Vec<_> = entries.iter().filter(|(_, s)| s != "stdout").collect();
    assert!(stderr.is_empty(), "{stderr:?}");
    let total: usize = entries.iter().map(|(l, _)| l.len()).sum();
    assert_eq!(total, 5_000_000 + "end\n".len());
    // The stalled client got a bounded prefix, then the end of the stream.
    let mut st = stalled.stream;
    st.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let (out, _) = read_frames(&mut st);
    assert!(!out.is_empty() && out.len() < 5_000_000, "{}", out.len());
    c.shutdown().unwrap();
    env.assert_clean(res.shim_pid);
}

#[test]
fn survives_its_spawner_being_killed() {
    let Some(env) = setup("spawnerkill", &["sleep", "1000"], false) else {
        return;
    };
    // A stand-in daemon: starts the shim, then lingers until SIGKILLed.
    let report = env.dir.path().join("report");
    let mut args = env.opts().args();
    args.extend(["--ready-fd".into(), "3".into()]);
    let mut daemon = std::process::Command::new("sh")
        .arg("-c")
        .arg("\"$0\" \"$@\" 3>\"$REPORT\"; exec sleep 1000")
        .arg(&env.shim)
        .args(&args)
        .env("REPORT", &report)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let line = loop {
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        if text.ends_with('\n') {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "no report");
        std::thread::sleep(Duration::from_millis(20));
    };
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["status"], "running", "{line}");
    let shim_pid = v["shim_pid"].as_i64().unwrap() as i32;
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    let mut c = connect(&env);
    let h = c.hello().unwrap();
    assert_eq!((h.status, h.shim_pid), (Status::Running, shim_pid));
    c.kill(libc::SIGKILL, false).unwrap();
    assert_eq!(c.wait().unwrap().exit_code, 137);
    c.shutdown().unwrap();
    env.assert_clean(shim_pid);
}

#[test]
fn raw_protocol_pipelining_and_errors() {
    use berth_shim::protocol::{LineBuffer, Response};
    use std::os::unix::net::UnixStream;

    let Some(env) = setup("raw", &["sh", "-c", "read x; echo got $x"], false) else {
        return;
    };
    let mut o = env.opts();
    o.no_start = true;
    o.stdin = true;
    let res = spawn(&o).unwrap();
    let sock = berth_shim::client::socket_path(&env.state);

    // A waiter that half-closes still gets its answers (after the exit), then EOF.
    let mut w = UnixStream::connect(&sock).unwrap();
    w.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    w.write_all(b"{\"op\":\"wait\"}\n{\"op\":\"exec-state\",\"id\":\"none\"}\n").unwrap();
    w.shutdown(Shutdown::Write).unwrap();

    // Requests, the switch to streaming and the first stdin bytes in one write.
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(
        b"{\"op\":\"nope\"}\n\n{\"op\":\"hello\",\"version\":1}\n{\"op\":\"start\"}\n\
          {\"op\":\"attach\",\"stdin\":true,\"stdout\":true,\"stderr\":true}\nping\n",
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let mut lb = LineBuffer::new();
    lb.push(&all);
    let mut next = || Response::decode(&lb.next_line().unwrap().unwrap()).unwrap();
    assert!(matches!(next(), Response::Error { kind: berth_error::ErrorKind::InvalidArgument, .. }));
    assert!(matches!(next(), Response::Hello(h) if h.status == Status::Created));
    assert!(matches!(next(), Response::Started { pid } if pid == res.container_pid));
    assert!(matches!(next(), Response::Attached { tty: false }));
    let rest = lb.take_rest();
    let (out, err) = read_frames(&mut &rest[..]);
    assert_eq!((out.as_slice(), err.as_slice()), (&b"got ping\n"[..], &b""[..]));

    let mut all = Vec::new();
    w.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(matches!(Response::decode(lines[0].as_bytes()).unwrap(), Response::Exit(r) if r.exit_code == 0));
    assert!(matches!(
        Response::decode(lines[1].as_bytes()).unwrap(),
        Response::Error { kind: berth_error::ErrorKind::NotFound, .. }
    ));
    // Nobody is connected any more: the shim leaves on its own.
    wait_gone(res.shim_pid);
    assert_eq!(read_exit_record(&env.state).unwrap().unwrap().exit_code, 0);
}
