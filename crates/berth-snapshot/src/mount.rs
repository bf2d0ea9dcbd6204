//! Mount descriptions and the helpers that carry them out with mount(2).
//!
//! The snapshotter only *describes* mounts (containerd's `[]mount.Mount`
//! seam); whoever needs a root filesystem mounts it with [`mount_all`] or
//! hands the description to a runtime.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{nix_err, Error, Result};

/// One mount: `kind` is the filesystem type (`"overlay"` or `"bind"`),
/// `source` the device or directory, `options` as in `mount -o`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// The most mount(2) copies of the data string: one page. 4096 is the smallest
/// page size Linux supports, so staying under it is safe everywhere.
const MOUNT_DATA_MAX: usize = 4096;

/// Splits `-o` style options into mount flags and the filesystem data string,
/// as containerd's `parseMountOptions`.
fn parse_options(options: &[String]) -> (MsFlags, bool, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut ro = false;
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => {
                flags |= MsFlags::MS_RDONLY;
                ro = true;
            }
            "rw" => {
                flags -= MsFlags::MS_RDONLY;
                ro = false;
            }
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "dirsync" => flags |= MsFlags::MS_DIRSYNC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "suid" => flags -= MsFlags::MS_NOSUID,
            "dev" => flags -= MsFlags::MS_NODEV,
            "exec" => flags -= MsFlags::MS_NOEXEC,
            _ => data.push(o.clone()),
        }
    }
    (flags, ro, data)
}

/// Mounts `mounts` on `target`, in order (containerd's `mount.All`). If one
/// fails, the ones already made are unmounted again.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..i {
                if let Err(ue) = unmount(target) {
                    tracing::warn!(target = %target.display(), error = %ue, "undoing partial mount");
                }
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<()> {
    let (flags, ro, data) = parse_options(&m.options);
    match m.kind.as_str() {
        "bind" | "rbind" => {
            let mut flags = flags | MsFlags::MS_BIND;
            if m.kind == "rbind" {
                flags |= MsFlags::MS_REC;
            }
            mount(Some(m.source.as_str()), target, None::<&str>, flags - MsFlags::MS_RDONLY, None::<&str>)
                .map_err(nix_err("bind mount onto", target))?;
            if ro {
                // MS_RDONLY is ignored on the first bind mount; it takes a
                // remount to make the bind read-only.
                let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags;
                if let Err(e) = mount(None::<&str>, target, None::<&str>, remount, None::<&str>) {
                    let _ = umount2(target, MntFlags::MNT_DETACH);
                    return Err(nix_err("remount read-only", target)(e));
                }
            }
            Ok(())
        }
        "overlay" => mount_overlay(&m.source, target, flags, &data),
        other => Err(Error::InvalidMount(format!("unsupported mount type {other:?} (expected overlay or bind)"))),
    }
}

fn mount_overlay(source: &str, target: &Path, flags: MsFlags, data: &[String]) -> Result<()> {
    let joined = data.join(",");
    if joined.len() < MOUNT_DATA_MAX {
        return mount(Some(source), target, Some("overlay"), flags, Some(joined.as_str()))
            .map_err(nix_err("mount overlay onto", target));
    }
    // Too long for one page even with short links (a deep image under a long
    // data root). Docker's overlay2 chdirs into its layer dir in a child
    // process for this; a threaded daemon cannot chdir, so each lower layer is
    // opened with O_PATH and named through /proc/self/fd instead, which the
    // kernel resolves to the directory while the descriptor stays open.
    let mut held: Vec<File> = Vec::new();
    let mut rewritten = Vec::with_capacity(data.len());
    for opt in data {
        let Some(lowers) = opt.strip_prefix("lowerdir=") else {
            rewritten.push(opt.clone());
            continue;
        };
        let mut parts = Vec::new();
        for dir in lowers.split(':') {
            let f = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
                .open(dir)
                .map_err(crate::error::io_err("open lower layer", Path::new(dir)))?;
            parts.push(format!("/proc/self/fd/{}", f.as_raw_fd()));
            held.push(f);
        }
        rewritten.push(format!("lowerdir={}", parts.join(":")));
    }
    let joined = rewritten.join(",");
    if joined.len() >= MOUNT_DATA_MAX {
        return Err(Error::InvalidMount(format!(
            "overlay options are {} bytes even with /proc/self/fd paths (limit {MOUNT_DATA_MAX})",
            joined.len()
        )));
    }
    let res = mount(Some(source), target, Some("overlay"), flags, Some(joined.as_str()))
        .map_err(nix_err("mount overlay onto", target));
    drop(held);
    res
}

/// Unmounts everything mounted on `target` (stacked mounts included, as
/// containerd's `UnmountAll`), falling back to a lazy MNT_DETACH when busy.
/// Not being a mount point is not an error. Symlinks at `target` are not
/// followed (UMOUNT_NOFOLLOW), so a container cannot redirect the unmount.
pub fn unmount(target: &Path) -> Result<()> {
    // Bounded: each round removes one mount; far more than any stack we make.
    for _ in 0..64 {
        match umount2(target, MntFlags::UMOUNT_NOFOLLOW) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => {
                umount2(target, MntFlags::UMOUNT_NOFOLLOW | MntFlags::MNT_DETACH)
                    .map_err(nix_err("lazy unmount", target))?;
            }
            Err(e) => return Err(nix_err("unmount", target)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let opts: Vec<String> =
            ["ro", "rbind", "nosuid", "lowerdir=/a:/b", "index=off"].iter().map(|s| s.to_string()).collect();
        let (flags, ro, data) = parse_options(&opts);
        assert!(ro);
        assert!(flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NOSUID));
        assert_eq!(data, vec!["lowerdir=/a:/b".to_string(), "index=off".to_string()]);
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let m = Mount { kind: "tmpfs".into(), source: "tmpfs".into(), options: vec![] };
        let err = mount_all(&[m], Path::new("/nonexistent")).expect_err("must fail");
        assert_eq!(err.kind(), berth_error::ErrorKind::InvalidArgument);
    }

    #[test]
    fn unmount_of_a_plain_directory_is_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        // EINVAL (not a mount point) as root, EPERM otherwise.
        let res = unmount(dir.path());
        if nix::unistd::geteuid().is_root() {
            assert!(res.is_ok(), "{res:?}");
        }
    }
}
