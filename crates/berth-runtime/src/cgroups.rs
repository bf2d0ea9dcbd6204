//! Removing a container's cgroups on `delete`.
//!
//! libcgroups' v1 manager locates each of its twelve controllers by parsing
//! /proc/self/mountinfo and /proc/self/cgroup once per controller, and its
//! removal sleeps 10 ms (then 20, 60, 100) whenever the first rmdir finds
//! dying tasks, which is the normal case right after a SIGKILL. `delete`
//! runs once per container on the start/stop path, so for cgroupfs (v1 and
//! plain v2 paths) we read the mount table once and poll the rmdir finely.
//! systemd-managed cgroups still go through libcgroups, which talks to
//! systemd.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use libcgroups::common::{get_cgroup_setup, CgroupManager, CgroupSetup};

use crate::error::{Error, Result};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How long to wait for killed tasks to leave a cgroup.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Removes the cgroup(s) at `cgroup_path` (the `cgroupsPath` libcontainer
/// stored at create), killing any task still inside.
pub fn remove(cgroup_path: &Path, systemd: bool, container_id: &str) -> Result<()> {
    let setup = get_cgroup_setup().map_err(|e| Error::cgroup("detect cgroup setup", e))?;
    let dirs = match setup {
        CgroupSetup::Legacy | CgroupSetup::Hybrid => v1_dirs(cgroup_path)?,
        CgroupSetup::Unified if !systemd || cgroup_path.is_absolute() => {
            vec![join_cgroup(Path::new(CGROUP_ROOT), cgroup_path)]
        }
        CgroupSetup::Unified => {
            let m = libcgroups::common::create_cgroup_manager(libcgroups::common::CgroupConfig {
                cgroup_path: cgroup_path.to_owned(),
                systemd_cgroup: true,
                container_name: container_id.to_owned(),
            })
            .map_err(|e| Error::cgroup("create cgroup manager", e))?;
            return m.remove().map_err(|e| Error::cgroup("remove cgroup", e));
        }
    };
    for dir in dirs {
        remove_tree(&dir).map_err(|e| Error::io(format!("remove cgroup {}", dir.display()), e))?;
    }
    Ok(())
}

/// `<mount>/<cgroup_path>` for every mounted v1 hierarchy, as libcgroups
/// computes it (the path is taken relative to the hierarchy's mount point).
fn v1_dirs(cgroup_path: &Path) -> Result<Vec<PathBuf>> {
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for mount_point in v1_mount_points(&mountinfo) {
        let dir = join_cgroup(&mount_point, cgroup_path);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    Ok(dirs)
}

/// Mount points of cgroup v1 hierarchies in a mountinfo text.
fn v1_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            if post.split_whitespace().next()? != "cgroup" {
                return None;
            }
            let mount_point = pre.split_whitespace().nth(4)?;
            Some(PathBuf::from(unescape_mount(mount_point)))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let oct = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn join_cgroup(base: &Path, cgroup_path: &Path) -> PathBuf {
    base.join(cgroup_path.strip_prefix("/").unwrap_or(cgroup_path))
}

/// Removes a cgroup directory and any child cgroups (a container may create
/// its own), killing remaining tasks and retrying while they exit.
fn remove_tree(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&e.path())?;
            }
        }
    }
    let deadline = Instant::now() + REMOVE_TIMEOUT;
    let mut delay = Duration::from_micros(200);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => {
                kill_tasks(dir);
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(20));
            }
        }
    }
}

fn kill_tasks(dir: &Path) {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill(2); the pid was listed in the container's cgroup.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v1_hierarchies() {
        let mi = "\
24 1 0:22 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
25 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
26 24 0:24 / /sys/fs/cgroup/memory rw shared:5 - cgroup cgroup rw,memory
27 24 0:25 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
28 1 0:26 / /mnt/with\\040space rw - cgroup cgroup rw,pids
";
        assert_eq!(
            v1_mount_points(mi),
            vec![
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/mnt/with space"),
            ]
        );
    }

    #[test]
    fn joins_absolute_and_relative_paths() {
        let base = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(join_cgroup(base, Path::new("/berth/c1")), PathBuf::from("/sys/fs/cgroup/memory/berth/c1"));
        assert_eq!(join_cgroup(base, Path::new("berth:c1")), PathBuf::from("/sys/fs/cgroup/memory/berth:c1"));
    }

    #[test]
    fn remove_tree_removes_plain_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cg = dir.path().join("c1");
        fs::create_dir_all(cg.join("child/grandchild")).expect("mkdir");
        remove_tree(&cg).expect("remove");
        assert!(!cg.exists());
        remove_tree(&cg).expect("absent is fine");
    }
}
