//! Resolution of container paths inside a root directory.
//!
//! A container's rootfs is untrusted: any component may be a symlink, and an
//! absolute symlink (`x -> /etc`) means `<root>/etc`, never the host's `/etc`.
//! `..` stops at the root exactly as it stops at `/` inside the container.
//!
//! The kernel does this atomically with `openat2(RESOLVE_IN_ROOT)` (Linux
//! 5.6+); we use it when available and fall back to a userspace walk in the
//! spirit of Docker's `symlink.FollowSymlinkInScope`.
//!
//! TOCTOU caveat: both variants return a *path*. Between this function
//! returning and the caller using the path, a process inside a running
//! container can replace a component with a symlink (the CVE-2018-15664
//! race). Callers that operate on running containers must either pause them
//! (as Docker does for `docker cp` since 19.03) or re-check with `O_NOFOLLOW`
//! opens. The userspace walk has the same race during the walk itself.

use std::collections::VecDeque;
use std::ffi::{CString, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::{io_ctx, Error, Result};

/// Linux's limit on symlinks followed in one lookup (`MAXSYMLINKS` is 40;
/// Docker's userspace walk allows 255). We stay with the kernel's number.
const MAX_SYMLINKS: usize = 40;

/// Resolves container path `path` inside `root`, following symlinks as the
/// container would see them but never leaving `root`. With `follow_last`
/// false a final symlink is returned itself (lstat semantics). Components
/// that do not exist are appended lexically, so the result may name a path
/// still to be created.
pub fn resolve_in_root(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    match openat2_resolve(root, path, follow_last) {
        Ok(Some(p)) => Ok(p),
        // ENOSYS (old kernel), EPERM (seccomp), ENOENT (a missing tail the
        // kernel will not resolve lexically), …: the userspace walk decides.
        Ok(None) | Err(_) => resolve_in_root_userspace(root, path, follow_last),
    }
}

/// The kernel path: `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, then
/// the resolved name read back from `/proc/self/fd`. `Ok(None)` means "use
/// the fallback".
fn openat2_resolve(root: &Path, path: &str, follow_last: bool) -> io::Result<Option<PathBuf>> {
    let root_canon = fs::canonicalize(root)?;
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let c_rel = CString::new(rel).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let root_fd = fs::File::open(&root_canon)?;
    let mut flags = libc::O_PATH | libc::O_CLOEXEC;
    if !follow_last {
        flags |= libc::O_NOFOLLOW;
    }
    // SAFETY: open_how is plain data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: the pointers refer to live, correctly sized values for the
    // duration of the call; the kernel copies them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root_fd.as_raw_fd(),
            c_rel.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return match io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::EINVAL)
            | Some(libc::E2BIG) | Some(libc::EAGAIN) | Some(libc::EXDEV) => Ok(None),
            _ => Err(io::Error::last_os_error()),
        };
    }
    // SAFETY: the syscall returned a new descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let real = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    match real.strip_prefix(&root_canon) {
        Ok(rest) => Ok(Some(root.join(rest))),
        // Unreachable with RESOLVE_IN_ROOT, but a bind mount or a moved
        // directory could make the name read back differ; let the walk decide.
        Err(_) => Ok(None),
    }
}

/// The userspace walk: one component at a time, `lstat` each, splice symlink
/// targets into the remaining components (absolute targets restart at
/// `root`), clamp `..` at `root`. Public so tests can exercise it on kernels
/// with `openat2`.
pub fn resolve_in_root_userspace(root: &Path, path: &str, follow_last: bool) -> Result<PathBuf> {
    let mut todo: VecDeque<OsString> = components(Path::new(path));
    let mut cur = PathBuf::new();
    let mut links = 0usize;
    let mut missing = false;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            cur.pop();
            continue;
        }
        let next = cur.join(&c);
        if missing || (todo.is_empty() && !follow_last) {
            cur = next;
            continue;
        }
        let host = root.join(&next);
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Error::Io {
                        context: format!("resolve {path}"),
                        source: io::Error::from_raw_os_error(libc::ELOOP),
                    });
                }
                let target = fs::read_link(&host).map_err(io_ctx(format!("readlink {}", host.display())))?;
                if target.is_absolute() {
                    cur = PathBuf::new();
                }
                let mut spliced = components(&target);
                spliced.extend(todo.drain(..));
                todo = spliced;
            }
            Ok(_) => cur = next,
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
                // Nothing below a missing component can be a symlink; the
                // rest is lexical (`..` still clamps).
                missing = true;
                cur = next;
            }
            Err(e) => return Err(io_ctx(format!("lstat {}", host.display()))(e)),
        }
    }
    Ok(root.join(cur))
}

/// Path components as plain names and `..`, dropping `/` and `.`.
fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// Lexically cleans a container path into a relative one, clamping `..` at
/// the root as Go's `filepath.Clean("/" + p)` does.
pub(crate) fn clean_rel(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in components(Path::new(p)) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a container path ends in `/` or `/.`, which Docker treats as
/// "the directory itself, followed" (`archive.PreserveTrailingDotOrSeparator`).
pub(crate) fn has_trailing_dot_or_sep(p: &str) -> bool {
    p.ends_with('/') || p.ends_with("/.") || p == "."
}

/// `filepath.Base` of a container path as Docker uses it to name archive
/// entries: trailing slashes dropped, `/.` kept as `.`.
pub(crate) fn go_base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    match t.rsplit_once('/') {
        Some((_, b)) => b.to_string(),
        None => t.to_string(),
    }
}

pub(crate) fn os_bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn both(root: &Path, p: &str, follow: bool) -> PathBuf {
        let a = resolve_in_root(root, p, follow).unwrap();
        let b = resolve_in_root_userspace(root, p, follow).unwrap();
        assert_eq!(a, b, "openat2 and userspace disagree on {p}");
        a
    }

    #[test]
    fn hostile_symlinks_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(r.join("etc/passwd"), "x").unwrap();
        symlink("/etc", r.join("x")).unwrap();
        symlink("../../../../..", r.join("up")).unwrap();
        symlink("/", r.join("evil")).unwrap();
        symlink("loop2", r.join("loop1")).unwrap();
        symlink("loop1", r.join("loop2")).unwrap();
        symlink("/etc/passwd", r.join("pw")).unwrap();
        assert_eq!(both(r, "/x", true), r.join("etc"));
        assert_eq!(both(r, "/x/passwd", true), r.join("etc/passwd"));
        assert_eq!(both(r, "x", false), r.join("x"));
        assert_eq!(both(r, "/../../..", true), r.to_path_buf());
        assert_eq!(both(r, "up/etc/passwd", true), r.join("etc/passwd"));
        assert_eq!(both(r, "evil/evil/etc", true), r.join("etc"));
        assert_eq!(both(r, "/pw", true), r.join("etc/passwd"));
        assert_eq!(both(r, "/pw", false), r.join("pw"));
        assert_eq!(both(r, "/", true), r.to_path_buf());
        // Missing tails are lexical, `..` still clamps.
        assert_eq!(both(r, "/x/new/../../../../y", true), r.join("y"));
        assert_eq!(both(r, "/x/newfile", true), r.join("etc/newfile"));
        assert!(resolve_in_root(r, "/loop1", true).is_err());
        assert!(resolve_in_root_userspace(r, "/loop1/a", true).is_err());
    }

    #[test]
    fn openat2_is_used_when_the_kernel_has_it() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        symlink("/etc", r.join("x")).unwrap();
        match openat2_resolve(r, ".", true) {
            Ok(Some(p)) => assert_eq!(p, r.to_path_buf()),
            _ => {
                eprintln!("skipping: no openat2 here");
                return;
            }
        }
        assert_eq!(openat2_resolve(r, "/x", true).unwrap(), Some(r.join("etc")));
        assert_eq!(openat2_resolve(r, "/x/../../..", true).unwrap(), Some(r.to_path_buf()));
        assert_eq!(openat2_resolve(r, "/x", false).unwrap(), Some(r.join("x")));
        assert_eq!(openat2_resolve(r, "/x/missing", true).unwrap(), None);
    }

    #[test]
    fn helpers() {
        assert_eq!(clean_rel("/../a/./b/../c"), PathBuf::from("a/c"));
        assert_eq!(go_base("/foo/"), "foo");
        assert_eq!(go_base("/foo/."), ".");
        assert_eq!(go_base("/"), "/");
        assert!(has_trailing_dot_or_sep("/a/"));
        assert!(!has_trailing_dot_or_sep("/a"));
    }
}
