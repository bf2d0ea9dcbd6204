//! Finding and loading containers in the state directory (`--root`).
//!
//! The layout is libcontainer's: `<root>/<id>/state.json` (plus its
//! `config.json` copy of hooks and cgroup path, and `notify.sock`), with our
//! `exec-status` FIFO and `init-start-time` next to it.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libcontainer::container::{Container, ContainerStatus, State};
use libcontainer::oci_spec::runtime::Spec;

use crate::error::{Error, Result};

/// runc's default is /run/runc; ours must not collide with it because the
/// state formats differ.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

/// Records the init process' start time so that a recycled pid is not taken
/// for the container (runc keeps the same in its state as `init_process_start`).
const START_TIME_FILE: &str = "init-start-time";

/// Creates the state directory if needed (mode 0700 like runc) and returns
/// its canonical path.
pub fn ensure_root(root: &Path) -> Result<PathBuf> {
    if !root.exists() {
        fs::create_dir_all(root).map_err(|e| Error::io(format!("create {}", root.display()), e))?;
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io(format!("chmod {}", root.display()), e))?;
    }
    root.canonicalize().map_err(|e| Error::io(format!("resolve {}", root.display()), e))
}

/// runc's id rule (`^[\w+-\.]+$`); anything else could escape the state
/// directory through the path.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("invalid container id format: {id}")))
    }
}

/// `<root>/<id>` after checking the id.
pub fn container_dir(root: &Path, id: &str) -> Result<PathBuf> {
    validate_id(id)?;
    Ok(root.join(id))
}

/// Loads a container and works out its current status. libcontainer looks
/// only at whether the recorded pid is alive; we also compare the process
/// start time, so a pid reused after the container exited reads as stopped
/// (and `kill` cannot hit an unrelated process).
pub fn load(root: &Path, id: &str) -> Result<Container> {
    let dir = container_dir(root, id)?;
    if !State::file_path(&dir).exists() {
        return Err(Error::NotExist);
    }
    let mut container = Container::load(dir.clone()).map_err(|e| Error::lib("load container state", e))?;
    if let (Some(pid), Some(recorded)) = (container.pid(), read_start_time(&dir)) {
        if container.status() != ContainerStatus::Stopped && proc_start_time(pid.as_raw()) != Some(recorded) {
            container.state.pid = None;
            container.set_status(ContainerStatus::Stopped);
        }
    }
    Ok(container)
}

/// Stores the init process' start time after `create`.
pub fn record_start_time(dir: &Path, pid: i32) -> Result<()> {
    if let Some(t) = proc_start_time(pid) {
        fs::write(dir.join(START_TIME_FILE), t.to_string()).map_err(|e| Error::io("record init start time", e))?;
    }
    Ok(())
}

fn read_start_time(dir: &Path) -> Option<u64> {
    fs::read_to_string(dir.join(START_TIME_FILE)).ok()?.trim().parse().ok()
}

/// Field 22 of /proc/<pid>/stat (clock ticks since boot). The command name
/// (field 2) may contain spaces and parentheses, so parse after the last ')'.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after comm start at field 3 (state); starttime is field 22.
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// runc's status words.
pub fn status_str(status: ContainerStatus) -> &'static str {
    match status {
        ContainerStatus::Creating => "creating",
        ContainerStatus::Created => "created",
        ContainerStatus::Running => "running",
        ContainerStatus::Stopped => "stopped",
        ContainerStatus::Paused => "paused",
    }
}

/// The absolute root filesystem of a bundle, as `state` reports it.
pub fn bundle_rootfs(bundle: &Path) -> PathBuf {
    let spec = Spec::load(bundle.join("config.json")).ok();
    match spec.as_ref().and_then(|s| s.root().as_ref()) {
        Some(root) if root.path().is_absolute() => root.path().clone(),
        Some(root) => bundle.join(root.path()),
        None => bundle.join("rootfs"),
    }
}

/// The cgroup manager for a loaded container.
pub fn cgroup_manager(container: &Container) -> Result<libcgroups::common::AnyCgroupManager> {
    let config = container.spec().map_err(|e| Error::lib("load container config", e))?;
    libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
        cgroup_path: config.cgroup_path,
        systemd_cgroup: container.systemd(),
        container_name: container.id().to_owned(),
    })
    .map_err(|e| Error::cgroup("create cgroup manager", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1_2+3.x").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "../x"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn start_time_parse() {
        let stat = "1234 (we (ird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        assert_eq!(parse_start_time("garbage"), None);
        let me = std::process::id() as i32;
        assert!(proc_start_time(me).is_some());
    }

    #[test]
    fn load_missing_is_not_exist() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(load(dir.path(), "nope"), Err(Error::NotExist)));
        assert!(matches!(load(dir.path(), "../x"), Err(Error::InvalidArgument(_))));
    }
}
