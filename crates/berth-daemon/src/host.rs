//! Facts about the host the daemon reports or depends on.

use std::path::{Path, PathBuf};

pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

/// "2" on a unified cgroup hierarchy, "1" otherwise (this includes the v1
/// hybrid layout, where controllers live on v1).
pub fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "2",
        _ => "1",
    }
}

/// Docker's name for the filesystem under the data root.
pub fn backing_fs(p: &Path) -> String {
    use nix::sys::statfs::*;
    match statfs(p) {
        Ok(s) => {
            let t = s.filesystem_type();
            if t == EXT4_SUPER_MAGIC {
                "extfs".into()
            } else if t == XFS_SUPER_MAGIC {
                "xfs".into()
            } else if t == TMPFS_MAGIC {
                "tmpfs".into()
            } else if t == BTRFS_SUPER_MAGIC {
                "btrfs".into()
            } else if t == OVERLAYFS_SUPER_MAGIC {
                "overlayfs".into()
            } else {
                format!("<unknown 0x{:x}>", t.0)
            }
        }
        Err(_) => "<unknown>".into(),
    }
}

pub fn check_overlay() {
    let ok = std::fs::read_to_string("/proc/filesystems").map(|s| s.contains("overlay")).unwrap_or(false);
    if !ok {
        tracing::warn!("overlay filesystem not listed in /proc/filesystems; containers need it (modprobe overlay)");
    }
}

/// A binary installed next to the running one (cargo install puts them together).
pub fn sibling_binary(name: &str) -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .or_else(|| which(name))
        .unwrap_or_else(|| name.to_string())
}

pub fn which(name: &str) -> Option<String> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d: PathBuf| d.join(name)).find(|p| p.is_file()).map(|p| p.display().to_string())
}

fn group_line(name: &str) -> Option<String> {
    std::fs::read_to_string("/etc/group").ok()?.lines().find(|l| l.split(':').next() == Some(name)).map(String::from)
}

pub fn group_exists(name: &str) -> bool {
    group_line(name).is_some()
}

pub fn group_id(name: &str) -> Option<u32> {
    group_line(name)?.split(':').nth(2)?.parse().ok()
}
