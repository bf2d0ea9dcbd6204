//! The embedded default: with no daemon on the default socket, the CLI (as
//! root) starts `berth daemon` in the background and carries on.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SOCK: &str = "/run/berth/berth.sock";
const ROOT: &str = "/var/lib/berth";

#[test]
fn cli_starts_the_daemon_when_none_answers() {
    require_root!();
    if std::os::unix::net::UnixStream::connect(SOCK).is_ok() {
        eprintln!("skipped: a daemon already answers on {SOCK}");
        return;
    }
    let root_existed = Path::new(ROOT).exists();
    let bridge_existed = Path::new("/sys/class/net/berth0").exists();
    let out = Command::new(common::berth_bin())
        .arg("version")
        .env_remove("DOCKER_HOST")
        .env_remove("BERTH_HOST")
        .output()
        .unwrap();
    let pid: Option<i32> =
        std::fs::read_to_string(format!("{ROOT}/berth.lock")).ok().and_then(|s| s.trim().parse().ok());
    // Stop the daemon we caused before asserting, so a failure leaves nothing running.
    if let Some(pid) = pid {
        // SAFETY: plain kill(2) of the daemon this test started.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        // The daemon closes its socket first, then tears its networking
        // down: wait for the process itself to be gone.
        let deadline = Instant::now() + Duration::from_secs(20);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !root_existed {
        let _ = std::fs::remove_dir_all(ROOT);
        let _ = std::fs::remove_dir_all("/run/berth");
    }
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Server: berth"), "{stdout}");
    assert!(pid.is_some(), "no daemon pid in {ROOT}/berth.lock");
    assert!(!Path::new(SOCK).exists(), "socket left after SIGTERM");
    if !bridge_existed {
        assert!(!Path::new("/sys/class/net/berth0").exists(), "bridge berth0 left after SIGTERM");
    }
}
