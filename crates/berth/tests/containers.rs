//! Root integration tests of containers: the lifecycle through the real
//! docker CLI and the berth CLI, bad input, restart policies, and containers
//! surviving a daemon killed with SIGKILL.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Nothing of a removed container is left: mounts, cgroups, state.
fn assert_no_leftovers(d: &Daemon, id: &str) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(id), "mount of {id} left behind");
    // The runtime's `delete` (cgroups) finishes just after the removal is
    // reported; give it a moment.
    for ctl in ["memory", "pids", "cpu", "freezer", "devices"] {
        let p = format!("/sys/fs/cgroup/{ctl}/berth/{id}");
        wait_until(&format!("cgroup {p} to go"), || !std::path::Path::new(&p).exists());
    }
    assert!(!d.root.join("containers").join(id).exists(), "container dir left behind");
    assert!(!d.root.join("exec").join(&id[..16]).exists(), "shim state left behind");
}

#[test]
fn docker_run_rm_and_exit_codes() {
    require_root!();
    let Some(d) = daemon_with_busybox() else { return };
    assert_eq!(docker_ok(&d, &["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    let (code, _, _) = docker(&d, &["run", "--rm", "busybox", "sh", "-c", "exit 3"]);
    assert_eq!(code, 3);
    // stdout and stderr stay apart without a TTY.
    let (code, out, err) = docker(&d, &["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "out\n", "err\n"));
    // The image's CMD, an argument override, an --entrypoint override, env and workdir.
    assert_eq!(
        docker_ok(&d, &["run", "--rm", "-e", "A=1", "-w", "/tmp", "busybox", "sh", "-c", "echo $A $(pwd) $HOSTNAME"])
            .split(' ')
            .take(2)
            .collect::<Vec<_>>(),
        vec!["1", "/tmp"]
    );
    assert_eq!(
        docker_ok(&d, &["run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint"]),
        "via entrypoint\n"
    );
    assert_eq!(docker_ok(&d, &["run", "--rm", "-u", "nobody", "busybox", "id", "-u"]), "65534\n");
    assert_eq!(docker_ok(&d, &["run", "--rm", "--hostname", "box1", "busybox", "hostname"]), "box1\n");
    // Namespaces: own pid 1, loopback up without a network.
    assert_eq!(docker_ok(&d, &["run", "--rm", "busybox", "sh", "-c", "echo $$"]), "1\n");
    let lo = docker_ok(&d, &["run", "--rm", "--network", "none", "busybox", "ip", "addr", "show", "lo"]);
    assert!(lo.contains("127.0.0.1") && lo.contains("UP"), "{lo}");
    // Read-only /proc/sys, masked kcore, Docker's default capability set.
    let (code, _, _) = docker(&d, &["run", "--rm", "busybox", "sh", "-c", "echo 1 > /proc/sys/kernel/domainname"]);
    assert_ne!(code, 0);
    let caps = docker_ok(&d, &["run", "--rm", "busybox", "sh", "-c", "grep CapEff /proc/self/status"]);
    assert_eq!(caps.trim(), "CapEff:\t00000000a80425fb", "Docker's default capabilities");
    // --init: a minimal init is PID 1, forwards signals and passes exit codes.
    let ps = docker_ok(&d, &["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"]);
    assert!(ps.contains("1 docker-init"), "{ps}");
    let (code, _, _) = docker(&d, &["run", "--rm", "--init", "busybox", "sh", "-c", "exit 4"]);
    assert_eq!(code, 4);
    let id = docker_ok(&d, &["run", "-d", "--init", "busybox", "sleep", "100"]);
    let t = Instant::now();
    docker_ok(&d, &["stop", id.trim()]);
    assert!(t.elapsed() < Duration::from_secs(5), "SIGTERM reached sleep through the init");
    assert_eq!(inspect(&d, id.trim())["State"]["ExitCode"], 143);
    docker_ok(&d, &["rm", id.trim()]);
    // -i: stdin reaches the container, and its EOF ends it.
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "printf 'piped\\n' | DOCKER_HOST={} DOCKER_CONFIG={} docker run -i --rm busybox cat",
            d.host(),
            d.dir.path().join("docker-config").display()
        ))
        .output()
        .unwrap();
    assert_eq!(stdout(&o), "piped\n", "{}", stderr(&o));
    // --rm removed everything.
    assert_eq!(docker_ok(&d, &["ps", "-aq"]), "");
    assert_eq!(std::fs::read_dir(d.root.join("containers")).unwrap().count(), 0);
}

#[test]
fn detached_lifecycle_through_docker_cli() {
    require_root!();
    let Some(d) = daemon_with_busybox() else { return };
    let id = docker_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "-l",
            "tier=front",
            "busybox",
            "sh",
            "-c",
            "trap 'exit 0' TERM; i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done",
        ],
    );
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    let ps = docker_ok(&d, &["ps", "--format", "{{.Names}} {{.Status}} {{.Label \"tier\"}}"]);
    assert!(ps.starts_with("web Up "), "{ps}");
    assert!(ps.trim().ends_with("front"), "{ps}");
    wait_until("logs", || docker_ok(&d, &["logs", "web"]).lines().count() >= 3);
    let tail = docker_ok(&d, &["logs", "--tail", "1", "web"]);
    assert_eq!(tail.lines().count(), 1);
    assert!(tail.starts_with("line "));
    let ts = docker_ok(&d, &["logs", "-t", "--tail", "1", "web"]);
    assert!(ts.contains("Z line "), "{ts}");
    // exec: output, exit code, env, user, workdir.
    assert_eq!(docker_ok(&d, &["exec", "web", "echo", "from exec"]), "from exec\n");
    let (code, _, _) = docker(&d, &["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    assert_eq!(
        docker_ok(
            &d,
            &["exec", "-e", "X=y", "-u", "nobody", "-w", "/tmp", "web", "sh", "-c", "echo $X $(id -u) $(pwd)"]
        ),
        "y 65534 /tmp\n"
    );
    let top = docker_ok(&d, &["top", "web"]);
    assert!(top.starts_with("UID") && top.contains("while true"), "{top}");
    // rename, pause, unpause.
    docker_ok(&d, &["rename", "web", "web2"]);
    assert_eq!(inspect(&d, "web2")["Name"], "/web2");
    docker_ok(&d, &["pause", "web2"]);
    assert_eq!(inspect(&d, "web2")["State"]["Status"], "paused");
    let (code, _, err) = docker(&d, &["exec", "web2", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("paused"), "{err}");
    docker_ok(&d, &["unpause", "web2"]);
    assert_eq!(inspect(&d, "web2")["State"]["Status"], "running");
    // rm of a running container is refused.
    let (code, _, err) = docker(&d, &["rm", "web2"]);
    assert_ne!(code, 0);
    assert!(err.contains("container is running: stop the container before removing or force remove"), "{err}");
    // stop uses the trap: exit 0, quickly.
    let t = Instant::now();
    docker_ok(&d, &["stop", "web2"]);
    assert!(t.elapsed() < Duration::from_secs(5));
    let st = inspect(&d, "web2");
    assert_eq!(st["State"]["Status"], "exited");
    assert_eq!(st["State"]["ExitCode"], 0);
    let ps = docker_ok(&d, &["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web2 Exited (0) "), "{ps}");
    // Stopping a stopped container: 304, the CLI prints the name.
    let (st_code, _, _) = d.http("POST", "/containers/web2/stop", None);
    assert_eq!(st_code, 304);
    // start again, kill with a signal, wait.
    docker_ok(&d, &["start", "web2"]);
    assert_eq!(inspect(&d, "web2")["State"]["Running"], true);
    docker_ok(&d, &["kill", "-s", "KILL", "web2"]);
    assert_eq!(docker_ok(&d, &["wait", "web2"]).trim(), "137");
    let (code, _, err) = docker(&d, &["exec", "web2", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("is not running"), "{err}");
    docker_ok(&d, &["restart", "-t", "1", "web2"]);
    assert_eq!(inspect(&d, "web2")["State"]["Running"], true);
    docker_ok(&d, &["rm", "-f", "web2"]);
    let (code, _, err) = docker(&d, &["inspect", "web2"]);
    assert_ne!(code, 0);
    assert!(err.contains("No such object: web2") || err.contains("No such container"), "{err}");
    assert_no_leftovers(&d, &id);
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    require_root!();
    let Some(d) = daemon_with_busybox() else { return };
    let before = std::fs::read_dir(d.root.join("containers")).unwrap().count();
    // Unknown image.
    let (st, v) = d.http_json("POST", "/containers/create", Some(br#"{"Image":"nosuch:1","Cmd":["true"]}"#));
    assert_eq!((st, v["message"].as_str().unwrap()), (404, "No such image: nosuch:1"));
    // Name in use.
    docker_ok(&d, &["create", "--name", "taken", "busybox", "true"]);
    let (code, _, err) = docker(&d, &["create", "--name", "taken", "busybox", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("is already in use by container"), "{err}");
    let (st, _) = d.http_json("POST", "/containers/create?name=taken", Some(br#"{"Image":"busybox"}"#));
    assert_eq!(st, 409);
    // Invalid names and restart policies.
    let (st, v) = d.http_json("POST", "/containers/create?name=bad/name", Some(br#"{"Image":"busybox"}"#));
    assert_eq!(st, 400, "{v}");
    let (st, v) = d.http_json(
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}}"#),
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("invalid restart policy"));
    // A ulimit above the host's hard limit.
    let (st, v) = d.http_json(
        "POST",
        "/containers/create",
        Some(br#"{"Image":"busybox","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":1,"Hard":99999999999}]}}"#),
    );
    assert_eq!(st, 400, "{v}");
    // Malformed JSON.
    let (st, _) = d.http_json("POST", "/containers/create", Some(b"{not json"));
    assert_eq!(st, 400);
    // A missing executable: exit 127 and the runtime's message, as Docker.
    let (code, _, err) = docker(&d, &["run", "--rm", "busybox", "/no/such/binary"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("no such file or directory") || err.contains("not found"), "{err}");
    let (code, _, err) = docker(&d, &["run", "--name", "nobin", "busybox", "nosuchcommand"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("executable file not found") || err.contains("not found"), "{err}");
    // An unknown user.
    let (code, _, err) = docker(&d, &["run", "--rm", "-u", "ghost", "busybox", "true"]);
    assert_ne!(code, 0);
    assert!(err.contains("unable to find user ghost"), "{err}");
    // Unknown containers.
    let (st, v) = d.http_json("POST", "/containers/nosuch/start", None);
    assert_eq!((st, v["message"].as_str().unwrap()), (404, "No such container: nosuch"));
    // Nothing half-created: only the two named containers exist, stopped.
    let names = docker_ok(&d, &["ps", "-a", "--format", "{{.Names}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, vec!["nobin", "taken"]);
    assert_eq!(std::fs::read_dir(d.root.join("containers")).unwrap().count(), before + 2);
    // Only the pre-created network namespaces (a pool of at most 3) stay mounted.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let root = d.root.to_str().unwrap();
    let ns = mounts.lines().filter(|l| l.contains(root) && l.contains("/exec/netns/")).count();
    assert!(ns <= 3, "{ns} network namespaces pinned");
    assert!(!mounts.lines().any(|l| l.contains(root) && !l.contains("/exec/netns/")), "a failed start left a mount");
}

#[test]
fn restart_policies_and_wait_conditions() {
    require_root!();
    let Some(d) = daemon_with_busybox() else { return };
    docker_ok(&d, &["run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 1"]);
    wait_until("two restarts", || {
        let v = inspect(&d, "flaky");
        v["RestartCount"] == 2 && v["State"]["Status"] == "exited"
    });
    docker_ok(
        &d,
        &["run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2; exit 0"],
    );
    wait_until("a restart of 'always'", || inspect(&d, "always")["RestartCount"].as_u64().unwrap_or(0) >= 1);
    docker_ok(&d, &["stop", "-t", "1", "always"]);
    let n = inspect(&d, "always")["RestartCount"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(inspect(&d, "always")["RestartCount"].as_u64().unwrap(), n, "a stopped container is not restarted");
    docker_ok(&d, &["update", "--restart", "no", "always"]);
    assert_eq!(inspect(&d, "always")["HostConfig"]["RestartPolicy"]["Name"], "no");
    // wait condition=removed completes after --rm removal.
    let id = docker_ok(&d, &["run", "-d", "--rm", "busybox", "sh", "-c", "sleep 0.3"]);
    let (st, _, body) = d.http("POST", &format!("/containers/{}/wait?condition=removed", id.trim()), None);
    assert_eq!(st, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["StatusCode"], 0);
    let (st, _) = d.http_json("GET", &format!("/containers/{}/json", id.trim()), None);
    assert_eq!(st, 404);
}

#[test]
fn containers_survive_daemon_kill_and_exits_are_recorded() {
    require_root!();
    let Some(mut d) = daemon_with_busybox() else { return };
    docker_ok(
        &d,
        &["run", "-d", "--name", "longrun", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.1; done"],
    );
    docker_ok(&d, &["run", "-d", "--name", "shortrun", "busybox", "sh", "-c", "sleep 1; exit 5"]);
    let pid = inspect(&d, "longrun")["State"]["Pid"].as_i64().unwrap();
    d.stop_with(libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "container died with the daemon");
    d.spawn();
    let v = inspect(&d, "longrun");
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(v["State"]["Pid"].as_i64().unwrap(), pid);
    wait_until("the exit recorded while away", || {
        let v = inspect(&d, "shortrun");
        v["State"]["Status"] == "exited" && v["State"]["ExitCode"] == 5
    });
    // Logs and exec still work through the re-attached shim.
    assert!(docker_ok(&d, &["logs", "--tail", "1", "longrun"]).starts_with("tick"));
    assert_eq!(docker_ok(&d, &["exec", "longrun", "echo", "ok"]), "ok\n");
    let id = inspect(&d, "longrun")["Id"].as_str().unwrap().to_string();
    docker_ok(&d, &["rm", "-f", "longrun", "shortrun"]);
    assert_no_leftovers(&d, &id);
}

#[test]
fn runc_runs_the_same_bundles() {
    require_root!();
    if common::which("runc").is_none() {
        eprintln!("skipped: runc not installed");
        return;
    }
    let Some(d) = daemon_with_busybox() else { return };
    assert_eq!(docker_ok(&d, &["run", "--rm", "--runtime", "runc", "busybox", "echo", "via runc"]), "via runc\n");
    let id = docker_ok(&d, &["run", "-d", "--runtime", "runc", "busybox", "sleep", "30"]);
    assert_eq!(inspect(&d, id.trim())["HostConfig"]["Runtime"], "runc");
    assert_eq!(docker_ok(&d, &["exec", id.trim(), "echo", "exec"]), "exec\n");
    docker_ok(&d, &["rm", "-f", id.trim()]);
    assert_no_leftovers(&d, id.trim());
}

/// Runs `cmd` in a detached tmux session of its own (a real terminal).
struct Tmux {
    session: String,
}

impl Tmux {
    fn start(session: &str, cmd: &str) -> Option<Tmux> {
        common::which("tmux")?;
        let st = std::process::Command::new("tmux")
            .args(["new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd])
            .status()
            .ok()?;
        st.success().then(|| Tmux { session: session.to_string() })
    }
    fn keys(&self, keys: &[&str]) {
        let mut c = std::process::Command::new("tmux");
        c.args(["send-keys", "-t", &self.session]).args(keys);
        assert!(c.status().unwrap().success());
    }
    fn screen(&self) -> String {
        let o = std::process::Command::new("tmux").args(["capture-pane", "-p", "-t", &self.session]).output().unwrap();
        stdout(&o)
    }
    fn wait_for(&self, text: &str) {
        wait_until(&format!("{text:?} on the terminal"), || self.screen().contains(text));
    }
    fn resize(&self, w: u32, h: u32) {
        let st = std::process::Command::new("tmux")
            .args(["resize-window", "-t", &self.session, "-x", &w.to_string(), "-y", &h.to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = std::process::Command::new("tmux").args(["kill-session", "-t", &self.session]).status();
    }
}

#[test]
fn interactive_tty_resize_detach_and_attach() {
    require_root!();
    let Some(d) = daemon_with_busybox() else { return };
    let session = format!("berth-tty-{}", std::process::id());
    let cmd = format!("DOCKER_HOST={} docker run -it --rm --name tty1 busybox sh", d.host());
    let Some(t) = Tmux::start(&session, &cmd) else {
        eprintln!("skipped: tmux not installed");
        return;
    };
    t.wait_for("/ #");
    t.keys(&["echo $((6*7))", "Enter"]);
    t.wait_for("42");
    t.keys(&["stty size", "Enter"]);
    t.wait_for("30 100");
    t.resize(120, 40);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["stty size", "Enter"]);
    t.wait_for("40 120");
    // Ctrl-P Ctrl-Q detaches; the container keeps running.
    t.keys(&["C-p", "C-q"]);
    wait_until("the docker CLI to detach", || {
        !t.screen().contains("40 120") || inspect(&d, "tty1")["State"]["Running"] == true
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&d, "tty1")["State"]["Running"], true);
    drop(t);
    // Re-attach from another terminal, then leave the shell: --rm removes it.
    let session2 = format!("berth-tty2-{}", std::process::id());
    let t2 = Tmux::start(&session2, &format!("DOCKER_HOST={} docker attach tty1; sleep 10", d.host())).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    t2.keys(&["echo re$((1+1))attached", "Enter"]);
    t2.wait_for("re2attached");
    t2.keys(&["exit", "Enter"]);
    wait_until("the --rm removal", || d.http("GET", "/containers/tty1/json", None).0 == 404);
}

#[test]
fn berth_cli_container_lifecycle() {
    require_root!();
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    assert_eq!(d.ok(&["run", "--rm", "busybox", "echo", "hi"]), "hi\n");
    let o = d.berth(&["run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!((o.status.code(), stdout(&o).as_str(), stderr(&o).as_str()), (Some(3), "out\n", "err\n"));
    let o = d.berth(&["run", "--rm", "busybox", "/no/such/binary"]);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "svc",
        "--restart",
        "unless-stopped",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do echo tick; sleep 0.1; done",
    ]);
    assert_eq!(id.trim().len(), 64);
    let ps = d.ok(&["ps", "--format", "{{.Names}}\t{{.Status}}"]);
    assert!(ps.starts_with("svc\tUp "), "{ps}");
    let table = d.ok(&["ps"]);
    assert!(table.starts_with("CONTAINER ID   IMAGE     COMMAND"), "{table}");
    assert_eq!(d.ok(&["exec", "svc", "echo", "in", "svc"]), "in svc\n");
    let o = d.berth(&["exec", "svc", "sh", "-c", "exit 9"]);
    assert_eq!(o.status.code(), Some(9));
    wait_until("logs", || d.ok(&["logs", "--tail", "2", "svc"]).lines().count() == 2);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}", "svc"]).trim(),
        "running unless-stopped"
    );
    let top = d.ok(&["top", "svc"]);
    assert!(top.contains("while true"), "{top}");
    assert_eq!(d.ok(&["stop", "svc"]).trim(), "svc");
    assert_eq!(d.ok(&["ps", "-a", "--filter", "status=exited", "-q"]).trim(), &id.trim()[..12]);
    assert_eq!(d.ok(&["start", "svc"]).trim(), "svc");
    assert_eq!(d.ok(&["rm", "-f", "svc"]).trim(), "svc");
    let err = d.fails(&["logs", "svc"]);
    assert!(err.contains("No such container: svc"), "{err}");
    assert_no_leftovers(&d, id.trim());
}

#[test]
fn berth_cli_interactive_tty() {
    require_root!();
    let d = Daemon::start();
    d.ok(&["load", "-i", fixture("busybox.tar").to_str().unwrap()]);
    let session = format!("berth-cli-tty-{}", std::process::id());
    let bin = common::berth_bin();
    let cmd = format!("{} -H {} run -it --name t1 busybox sh", bin.display(), d.host());
    let Some(t) = Tmux::start(&session, &cmd) else {
        eprintln!("skipped: tmux not installed");
        return;
    };
    t.wait_for("/ #");
    t.keys(&["echo $((6*7))", "Enter"]);
    t.wait_for("42");
    t.resize(110, 35);
    std::thread::sleep(Duration::from_millis(300));
    t.keys(&["stty size", "Enter"]);
    t.wait_for("35 110");
    t.keys(&["C-p", "C-q"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&d, "t1")["State"]["Running"], true);
    drop(t);
    let t2 = Tmux::start(&format!("{session}-2"), &format!("{} -H {} attach t1; sleep 10", bin.display(), d.host()))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    t2.keys(&["echo back$((2+2))", "Enter"]);
    t2.wait_for("back4");
    t2.keys(&["exit", "Enter"]);
    wait_until("the exit", || inspect(&d, "t1")["State"]["Status"] == "exited");
}

#[test]
fn restart_policies_apply_when_the_daemon_starts() {
    require_root!();
    let Some(mut d) = daemon_with_busybox() else { return };
    docker_ok(&d, &["run", "-d", "--name", "alw", "--restart", "always", "busybox", "sleep", "1000"]);
    docker_ok(&d, &["run", "-d", "--name", "unl", "--restart", "unless-stopped", "busybox", "sleep", "1000"]);
    docker_ok(&d, &["run", "-d", "--name", "non", "busybox", "sleep", "1000"]);
    docker_ok(&d, &["stop", "-t", "0", "unl"]);
    let pid_a = inspect(&d, "alw")["State"]["Pid"].as_i64().unwrap() as i32;
    let pid_n = inspect(&d, "non")["State"]["Pid"].as_i64().unwrap() as i32;
    // The daemon goes away, and so do the containers' processes (as in a
    // host crash); the restarted daemon applies the policies.
    d.stop_with(libc::SIGKILL);
    // SAFETY: killing the test's own container processes.
    unsafe {
        libc::kill(pid_a, libc::SIGKILL);
        libc::kill(pid_n, libc::SIGKILL);
    }
    std::thread::sleep(Duration::from_millis(500));
    d.spawn();
    wait_until("'always' to be running again", || inspect(&d, "alw")["State"]["Running"] == true);
    assert_ne!(inspect(&d, "alw")["State"]["Pid"].as_i64().unwrap() as i32, pid_a);
    wait_until("'no' to be recorded as exited", || inspect(&d, "non")["State"]["Status"] == "exited");
    assert_eq!(inspect(&d, "non")["State"]["ExitCode"], 137);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        inspect(&d, "unl")["State"]["Status"],
        "exited",
        "a user-stopped unless-stopped container stays stopped"
    );
    assert_eq!(inspect(&d, "non")["State"]["Status"], "exited");
    docker_ok(&d, &["rm", "-f", "alw", "unl", "non"]);
}
