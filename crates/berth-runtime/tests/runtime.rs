//! Root integration tests: drive the runtime binary the way the shim does,
//! on a busybox bundle. Each test skips with a note when not root or when
//! busybox or the binary is missing.

mod common;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Duration;

use common::{read_all, stderr_of, stdout_of, v1_cgroup, wait_exit, Ctr};

fn assert_ok(what: &str, o: &std::process::Output) {
    assert!(o.status.success(), "{what} failed ({:?}): {}", o.status.code(), stderr_of(o));
}

fn assert_nothing_left(c: &Ctr) {
    assert!(!c.root.path().join("state").join(&c.id).exists(), "state dir left behind");
    let leftovers: Vec<_> = std::fs::read_dir(c.root.path().join("state"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "files left in root: {leftovers:?}");
    assert!(c.cgroup_dirs().is_empty(), "cgroups left behind: {:?}", c.cgroup_dirs());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let bundle = c.bundle.path().to_string_lossy().into_owned();
    assert!(!mountinfo.contains(&bundle), "mounts left under the bundle on the host");
}

#[test]
fn lifecycle_output_exit_code_and_cleanup() {
    require_root!();
    let script = "echo out; echo err >&2; hostname; ulimit -n; \
                  wc -c < /proc/timer_list; echo x > /dev/null && echo devnull-ok; \
                  grep -E ' /dev/(mqueue|pts|shm) | /sys sysfs ro' /proc/mounts | wc -l; \
                  exit 7";
    let c = Ctr::new("life", &["sh", "-c", script]);
    let pid_file = c.root.path().join("init.pid");
    let pid_arg = pid_file.to_string_lossy().into_owned();
    let (out, mut child) = c.create_piped(&["--pid-file", &pid_arg]);
    assert!(out.status.success(), "create failed");

    let state = c.state().expect("state after create");
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], c.id.as_str());
    assert!(state["ociVersion"].as_str().is_some_and(|v| v.starts_with("1.")));
    assert_eq!(state["bundle"], c.bundle.path().canonicalize().expect("canon").to_string_lossy().as_ref());
    assert!(state["rootfs"].as_str().is_some_and(|r| r.ends_with("/rootfs")));
    let pid = std::fs::read_to_string(&pid_file).expect("pid file").trim().parse::<i32>().expect("pid");
    assert_eq!(state["pid"], pid);
    // The cgroup v1 manager put the init process into its cgroups, with the
    // configured limits.
    let memory = v1_cgroup("memory", &c.id);
    if memory.exists() {
        let procs = std::fs::read_to_string(memory.join("cgroup.procs")).unwrap_or_default();
        assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
        let limit = std::fs::read_to_string(memory.join("memory.limit_in_bytes")).unwrap_or_default();
        assert_eq!(limit.trim(), "134217728");
    }
    let pids = v1_cgroup("pids", &c.id);
    if pids.exists() {
        assert_eq!(std::fs::read_to_string(pids.join("pids.max")).unwrap_or_default().trim(), "200");
    }

    assert_ok("start", &c.run(&["start", &c.id]));
    let stdout = read_all(child.stdout.take());
    let stderr = read_all(child.stderr.take());
    assert_eq!(stdout, format!("out\n{}\n1024\n0\ndevnull-ok\n4\n", c.id), "stderr: {stderr}");
    assert_eq!(stderr, "err\n");
    assert_eq!(wait_exit(pid), 7);

    assert!(c.wait_status("stopped"));
    assert_eq!(c.pid(), 0);
    assert_ok("delete", &c.run(&["delete", &c.id]));
    assert!(c.state().is_none());
    assert_nothing_left(&c);
}

#[test]
fn kill_with_sigterm_and_sigkill() {
    require_root!();
    // A shell as pid 1 only gets SIGTERM with a handler installed.
    let c = Ctr::new(
        "term",
        &["sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.05; done"],
    );
    let (out, mut child) = c.create_piped(&[]);
    assert!(out.status.success());
    let pid = c.pid();
    assert_ok("start", &c.run(&["start", &c.id]));
    let mut stdout = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut buf).expect("ready");
    assert_eq!(&buf, b"ready\n");
    assert_ok("kill", &c.run(&["kill", &c.id]));
    assert_eq!(wait_exit(pid), 3);
    assert_eq!(read_all(Some(stdout)), "got-term\n");
    assert!(c.wait_status("stopped"));
    let again = c.run(&["kill", &c.id, "KILL"]);
    assert!(!again.status.success());
    assert!(stderr_of(&again).contains("container not running"), "{}", stderr_of(&again));
    assert_ok("delete", &c.run(&["delete", &c.id]));

    let k = Ctr::new("kill9", &["sleep", "1000"]);
    let (out, _child) = k.create_piped(&[]);
    assert!(out.status.success());
    let pid = k.pid();
    assert_ok("start", &k.run(&["start", &k.id]));
    assert_eq!(k.status(), "running");
    assert!(!k.run(&["kill", &k.id, "NOSUCHSIG"]).status.success());
    assert_ok("kill 9", &k.run(&["kill", &k.id, "9"]));
    assert_eq!(wait_exit(pid), 128 + 9);
    assert!(k.wait_status("stopped"));
    assert_ok("delete", &k.run(&["delete", &k.id]));
    assert_nothing_left(&k);
}

#[test]
fn pause_and_resume_use_the_freezer() {
    require_root!();
    let c = Ctr::new("pause", &["sleep", "1000"]);
    let (out, _child) = c.create_piped(&[]);
    assert!(out.status.success());
    let pid = c.pid();
    assert_ok("start", &c.run(&["start", &c.id]));
    assert_ok("pause", &c.run(&["pause", &c.id]));
    assert_eq!(c.status(), "paused");
    let freezer = v1_cgroup("freezer", &c.id).join("freezer.state");
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap_or_default().trim(), "FROZEN");
    }
    let exec = c.run(&["exec", &c.id, "true"]);
    assert!(!exec.status.success(), "exec into a paused container must fail");
    assert!(!c.run(&["pause", &c.id]).status.success());
    let del = c.run(&["delete", &c.id]);
    assert!(!del.status.success());
    assert!(stderr_of(&del).contains("not stopped"), "{}", stderr_of(&del));
    assert_ok("resume", &c.run(&["resume", &c.id]));
    assert_eq!(c.status(), "running");
    if freezer.exists() {
        assert_eq!(std::fs::read_to_string(&freezer).unwrap_or_default().trim(), "THAWED");
    }
    // Killing a paused container must still work (the freezer is thawed).
    assert_ok("pause", &c.run(&["pause", &c.id]));
    assert_ok("kill", &c.run(&["kill", &c.id, "SIGKILL"]));
    assert_eq!(wait_exit(pid), 128 + 9);
    assert!(c.wait_status("stopped"));
    assert_ok("delete", &c.run(&["delete", &c.id]));
    assert_nothing_left(&c);
}

#[test]
fn missing_executable_gives_runc_error() {
    require_root!();
    let c = Ctr::new("noexec", &["foo"]);
    let (out, child) = c.create_piped(&[]);
    assert!(!out.status.success(), "create must fail");
    let stderr = read_all(child.stderr);
    let want = r#"exec: "foo": executable file not found in $PATH"#;
    assert!(stderr.contains(want), "stderr: {stderr}");
    let last = c.last_log_error().expect("error in log");
    assert!(last.contains(&format!("unable to start container process: {want}")), "{last}");
    assert!(c.state().is_none());
    assert_nothing_left(&c);

    // The same for a path that exists but is not executable.
    let d = Ctr::new("noperm", &["/etc/passwd"]);
    let (out, child) = d.create_piped(&[]);
    assert!(!out.status.success());
    let stderr = read_all(child.stderr);
    assert!(stderr.contains(r#"exec: "/etc/passwd": permission denied"#), "stderr: {stderr}");
    assert_nothing_left(&d);
}

#[test]
fn runtime_binary_cannot_be_run_inside_the_container() {
    require_root!();
    // CVE-2019-5736: /proc/self/exe of the init process is the host binary.
    let c = Ctr::new("selfexe", &["/proc/self/exe", "--version"]);
    let (out, child) = c.create_piped(&[]);
    assert!(!out.status.success(), "create must fail");
    let stderr = read_all(child.stderr);
    assert!(stderr.contains("refusing to execute the runtime binary"), "{stderr}");
    assert_nothing_left(&c);

    let r = Ctr::new("selfexec", &["sleep", "1000"]);
    let (out, _child) = r.create_piped(&[]);
    assert!(out.status.success());
    let pid = r.pid();
    assert_ok("start", &r.run(&["start", &r.id]));
    let o = r.run(&["exec", &r.id, "/proc/self/exe", "--version"]);
    assert!(!o.status.success());
    assert!(stderr_of(&o).contains("refusing to execute the runtime binary"), "{}", stderr_of(&o));
    assert_ok("kill", &r.run(&["kill", &r.id, "KILL"]));
    assert_eq!(wait_exit(pid), 128 + 9);
    assert_ok("delete", &r.run(&["delete", &r.id]));
}

#[test]
fn exec_format_error_after_start_reaches_container_stderr() {
    require_root!();
    let c = Ctr::new("badfmt", &["/bin/bad"]);
    std::fs::write(c.bundle.rootfs().join("bin/bad"), "not a program\n").expect("write");
    let mut perms = std::fs::metadata(c.bundle.rootfs().join("bin/bad")).expect("md").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(c.bundle.rootfs().join("bin/bad"), perms).expect("chmod");
    let (out, mut child) = c.create_piped(&[]);
    assert!(out.status.success());
    let pid = c.pid();
    // As with runc, start succeeds and the container exits 1.
    assert_ok("start", &c.run(&["start", &c.id]));
    let stderr = read_all(child.stderr.take());
    assert!(stderr.contains("exec /bin/bad: exec format error"), "{stderr}");
    assert_eq!(wait_exit(pid), 1);
    assert_ok("delete", &c.run(&["delete", &c.id]));
}

#[test]
fn exec_into_running_container() {
    require_root!();
    let c = Ctr::new("exec", &["sleep", "1000"]);
    let (out, _child) = c.create_piped(&[]);
    assert!(out.status.success());
    let pid = c.pid();
    assert_ok("start", &c.run(&["start", &c.id]));

    let o = c.run(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/tmp",
        &c.id,
        "sh",
        "-c",
        "echo $FOO $(pwd) $HOSTNAME; ulimit -n; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr_of(&o));
    assert_eq!(stdout_of(&o), format!("bar /tmp {}\n1024\n", c.id));

    // The exec'd process shares the container's namespaces: it sees pid 1.
    let o = c.run(&["exec", &c.id, "cat", "/proc/1/cmdline"]);
    assert_ok("exec cat", &o);
    assert_eq!(stdout_of(&o), "sleep\u{0}1000\u{0}");

    let o = c.run(&["exec", &c.id, "nope"]);
    assert!(!o.status.success());
    assert!(stderr_of(&o).contains(r#"exec: "nope": executable file not found in $PATH"#), "{}", stderr_of(&o));

    // Detached, as the shim runs it, with a process.json.
    let process = c.root.path().join("process.json");
    std::fs::write(
        &process,
        r#"{"terminal":false,"user":{"uid":0,"gid":0},"args":["sleep","1000"],
            "env":["PATH=/bin"],"cwd":"/"}"#,
    )
    .expect("process.json");
    let pid_file = c.root.path().join("exec.pid");
    // The detached process keeps the caller's stdio, so do not wait for EOF.
    let status = c
        .cmd(&[
            "exec",
            "--detach",
            "--process",
            &process.to_string_lossy(),
            "--pid-file",
            &pid_file.to_string_lossy(),
            &c.id,
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("exec --detach");
    assert!(status.success(), "exec --detach: {:?}", c.last_log_error());
    let exec_pid: i32 = std::fs::read_to_string(&pid_file).expect("exec pid file").trim().parse().expect("pid");
    let ps = c.run(&["ps", "--format", "json", &c.id]);
    assert_ok("ps", &ps);
    let pids: Vec<i32> = serde_json::from_slice(&ps.stdout).expect("ps json");
    assert!(pids.contains(&pid) && pids.contains(&exec_pid), "{pids:?}");

    assert_ok("kill --all", &c.run(&["kill", "--all", &c.id, "KILL"]));
    assert_eq!(wait_exit(exec_pid), 128 + 9);
    assert_eq!(wait_exit(pid), 128 + 9);
    assert_ok("delete", &c.run(&["delete", &c.id]));
    assert_nothing_left(&c);
}

/// Receives one fd sent with SCM_RIGHTS, as the shim does.
fn recv_fd(stream: &std::os::unix::net::UnixStream) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 64];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(stream.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).expect("recvmsg");
    for cmsg in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            // SAFETY: the kernel installed this fd for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received");
}

#[test]
fn console_socket_receives_pty_master() {
    require_root!();
    let c = Ctr::new("tty", &["sh", "-c", "tty; echo hi-from-tty; exit 5"]);
    c.bundle.edit_config(|v| v["process"]["terminal"] = serde_json::json!(true));
    let sock = c.root.path().join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        recv_fd(&stream)
    });
    let (out, _child) = c.create_piped(&["--console-socket", &sock.to_string_lossy()]);
    assert!(out.status.success(), "create with console socket failed: {:?}", c.last_log_error());
    let master = receiver.join().expect("receiver");
    let pid = c.pid();
    assert_ok("start", &c.run(&["start", &c.id]));
    let mut file = std::fs::File::from(master);
    let mut text = Vec::new();
    // Reading the master ends with EIO once the slave side is closed.
    let _ = std::io::Read::read_to_end(&mut file, &mut text);
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("hi-from-tty\r\n"), "{text:?}");
    assert_eq!(wait_exit(pid), 5);
    assert_ok("delete", &c.run(&["delete", &c.id]));
    assert_nothing_left(&c);
}

#[test]
fn preserve_fds_passes_extra_files() {
    use std::os::unix::process::CommandExt;
    require_root!();
    let c = Ctr::new("fds", &["sh", "-c", "echo via-fd3 >&3; ls /proc/self/fd | wc -l"]);
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    let writer_fd = writer.as_raw_fd();
    let bundle = c.bundle.path().to_string_lossy().into_owned();
    let mut cmd = c.cmd(&["create", "--bundle", &bundle, "--preserve-fds", "1", &c.id]);
    // SAFETY: dup2 is async-signal-safe; it runs in the forked child.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(writer_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("create");
    assert!(child.wait().expect("wait").success(), "{:?}", c.last_log_error());
    drop(writer);
    let pid = c.pid();
    assert_ok("start", &c.run(&["start", &c.id]));
    assert_eq!(read_all(Some(std::fs::File::from(reader))), "via-fd3\n");
    // 0, 1, 2, 3 and the directory fd of ls: nothing else leaked in.
    assert_eq!(read_all(child.stdout.take()).trim(), "5");
    assert_eq!(wait_exit(pid), 0);
    assert_ok("delete", &c.run(&["delete", &c.id]));
}

#[test]
fn seccomp_profile_is_enforced() {
    require_root!();
    let c = Ctr::new("seccomp", &["sh", "-c", "mkdir /tmp/x && echo made || echo blocked"]);
    c.bundle.edit_config(|v| {
        v["linux"]["seccomp"] = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let o = c.run(&["run", "--bundle", &c.bundle.path().to_string_lossy(), &c.id]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr_of(&o));
    assert_eq!(stdout_of(&o), "blocked\n");
    assert!(stderr_of(&o).contains("Operation not permitted"), "{}", stderr_of(&o));
    assert_nothing_left(&c);
}

#[test]
fn delete_of_created_container_kills_init() {
    require_root!();
    let c = Ctr::new("created", &["sleep", "1000"]);
    let (out, _child) = c.create_piped(&[]);
    assert!(out.status.success());
    let pid = c.pid();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_ok("delete", &c.run(&["delete", &c.id]));
    assert_eq!(wait_exit(pid), 128 + 9);
    assert_nothing_left(&c);
    let o = c.run(&["state", &c.id]);
    assert!(!o.status.success());
    assert!(stderr_of(&o).contains("does not exist"), "{}", stderr_of(&o));
    assert!(!c.run(&["delete", &c.id]).status.success());
    assert_ok("delete --force of nothing", &c.run(&["delete", "--force", &c.id]));
}

#[test]
fn run_in_foreground_returns_exit_code() {
    require_root!();
    let c = Ctr::new("run", &["sh", "-c", "echo ran; exit 9"]);
    let o = c.run(&["run", "--bundle", &c.bundle.path().to_string_lossy(), &c.id]);
    assert_eq!(o.status.code(), Some(9), "{}", stderr_of(&o));
    assert_eq!(stdout_of(&o), "ran\n");
    assert_nothing_left(&c);
}

#[test]
fn list_shows_containers() {
    require_root!();
    let c = Ctr::new("list", &["sleep", "1000"]);
    let (out, _child) = c.create_piped(&[]);
    assert!(out.status.success());
    let o = c.run(&["list", "--format", "json"]);
    assert_ok("list", &o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v[0]["id"], c.id.as_str());
    assert_eq!(v[0]["status"], "created");
    let o = c.run(&["list", "-q"]);
    assert_eq!(stdout_of(&o), format!("{}\n", c.id));
    let pid = c.pid();
    assert_ok("delete", &c.run(&["delete", &c.id]));
    let _ = wait_exit(pid);
    std::thread::sleep(Duration::from_millis(1));
}
