//! kill, pause and resume.

use std::str::FromStr;

use libcgroups::common::{get_cgroup_setup, CgroupManager, CgroupSetup, FreezerState};
use libcontainer::container::{Container, ContainerStatus};

use crate::cli::{Global, Kill};
use crate::container::{self, status_str};
use crate::error::{Error, Result};

/// runc's `parseSignal`: a number, or a name with or without `SIG`, any case.
/// Real-time signals may be given as `RTMIN+n` / `RTMAX-n`.
pub fn parse_signal(raw: &str) -> Result<i32> {
    let invalid = || Error::InvalidArgument(format!("unknown signal {raw:?}"));
    if let Ok(n) = raw.parse::<i32>() {
        return if (0..=libc::SIGRTMAX()).contains(&n) { Ok(n) } else { Err(invalid()) };
    }
    let upper = raw.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32> {
        let off: i32 = if rest.is_empty() { 0 } else { rest.parse().map_err(|_| invalid())? };
        let n = base + sign * off;
        if (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(invalid())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt(libc::SIGRTMIN(), rest.trim_start_matches('+'), 1);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt(libc::SIGRTMAX(), rest.trim_start_matches('-'), -1);
    }
    nix::sys::signal::Signal::from_str(&format!("SIG{name}")).map(|s| s as i32).map_err(|_| invalid())
}

fn send(pid: i32, sig: i32) -> nix::Result<()> {
    // SAFETY: plain kill(2); raw numbers allow real-time signals, which
    // nix's Signal enum cannot express.
    let r = unsafe { libc::kill(pid, sig) };
    if r == 0 {
        Ok(())
    } else {
        Err(nix::errno::Errno::last())
    }
}

fn is_cgroup_v1() -> bool {
    matches!(get_cgroup_setup(), Ok(CgroupSetup::Legacy | CgroupSetup::Hybrid))
}

/// `kill`. Unlike libcontainer's `Container::kill`, this never rewrites the
/// saved state: the container is stopped when its init process is gone, not
/// when a (possibly ignored) signal was sent.
pub fn kill(global: &Global, args: &Kill) -> Result<()> {
    let sig = parse_signal(&args.signal)?;
    let c = container::load(&global.root, &args.id)?;
    let status = c.status();
    if args.all {
        return kill_all(&c, sig);
    }
    let pid = match (status, c.pid()) {
        (ContainerStatus::Stopped, _) | (_, None) => return Err(Error::IncorrectState("container not running".into())),
        (_, Some(pid)) => pid.as_raw(),
    };
    match send(pid, sig) {
        Ok(()) => {}
        Err(nix::errno::Errno::ESRCH) => return Err(Error::IncorrectState("container not running".into())),
        Err(e) => return Err(Error::io("signal init process", e.into())),
    }
    // A frozen task does not act on signals on cgroup v1; runc thaws a
    // paused container for SIGKILL so that it actually dies.
    if status == ContainerStatus::Paused && sig == libc::SIGKILL && is_cgroup_v1() {
        let m = container::cgroup_manager(&c)?;
        m.freeze(FreezerState::Thawed).map_err(|e| Error::cgroup("thaw container", e))?;
    }
    Ok(())
}

/// `kill --all`: every process in the cgroup, frozen while we signal so
/// that nothing forks away (runc's signalAllProcesses).
pub(crate) fn kill_all(c: &Container, sig: i32) -> Result<()> {
    let m = container::cgroup_manager(c)?;
    let paused = c.status() == ContainerStatus::Paused;
    if !paused {
        if let Err(e) = m.freeze(FreezerState::Frozen) {
            tracing::warn!("failed to freeze container before signalling: {e}");
        }
    }
    let pids = m.get_all_pids().map_err(|e| Error::cgroup("list container processes", e));
    let result = pids.and_then(|pids| {
        for pid in pids {
            match send(pid.as_raw(), sig) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(Error::io(format!("signal process {pid}"), e.into())),
            }
        }
        Ok(())
    });
    if !paused || sig == libc::SIGKILL {
        if let Err(e) = m.freeze(FreezerState::Thawed) {
            tracing::warn!("failed to thaw container after signalling: {e}");
        }
    }
    result
}

/// `pause`: freezes the container's cgroup.
pub fn pause(global: &Global, id: &str) -> Result<()> {
    let mut c = container::load(&global.root, id)?;
    if c.status() != ContainerStatus::Running {
        return Err(Error::IncorrectState(format!("container not running (status: {})", status_str(c.status()))));
    }
    c.pause().map_err(|e| Error::lib("pause container", e))
}

/// `resume`: thaws a paused container.
pub fn resume(global: &Global, id: &str) -> Result<()> {
    let mut c = container::load(&global.root, id)?;
    if c.status() != ContainerStatus::Paused {
        return Err(Error::IncorrectState(format!("container not paused (status: {})", status_str(c.status()))));
    }
    c.resume().map_err(|e| Error::lib("resume container", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").ok(), Some(libc::SIGKILL));
        assert_eq!(parse_signal("SIGKILL").ok(), Some(libc::SIGKILL));
        assert_eq!(parse_signal("sigterm").ok(), Some(libc::SIGTERM));
        assert_eq!(parse_signal("term").ok(), Some(libc::SIGTERM));
        assert_eq!(parse_signal("9").ok(), Some(9));
        assert_eq!(parse_signal("0").ok(), Some(0));
        assert_eq!(parse_signal("HUP").ok(), Some(libc::SIGHUP));
        assert_eq!(parse_signal("RTMIN+3").ok(), Some(libc::SIGRTMIN() + 3));
        assert_eq!(parse_signal("SIGRTMAX").ok(), Some(libc::SIGRTMAX()));
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("-1").is_err());
        assert!(parse_signal("65").is_err());
    }
}
