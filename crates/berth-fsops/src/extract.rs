//! `PUT /containers/{id}/archive?path=`: extraction of a client's tar into an
//! existing directory of a container.
//!
//! The archive is first unpacked into a fresh staging directory inside the
//! destination (same filesystem, so moving is a rename), checking every entry
//! on the way; only when the whole archive unpacked cleanly are the staged
//! entries renamed into place, after a dry run of that merge has checked for
//! `NoOverwriteDirNonDir` conflicts. A bad archive therefore leaves nothing
//! behind; an I/O failure during the final renames (disk errors) can still
//! leave part of the entries moved.
//!
//! Hostile archives (CVE-2018-15664 class) are refused:
//! - entries whose name escapes with `..` (`"../../etc/passwd" is outside of
//!   "/dest"`, Docker's breakout text); absolute names are taken relative to
//!   the destination as Docker and GNU tar do;
//! - entries under a symlink the same archive created (`evil -> /` then
//!   `evil/etc/x`): refused outright. Docker follows such links inside a
//!   chroot of the container; we are stricter because the staging directory
//!   has no container root to chroot into;
//! - hardlinks whose target is not an entry of the archive itself (a link to
//!   `/etc/shadow` would otherwise expose a host or container file);
//! - existing symlinks in the destination are followed only through
//!   [`resolve_in_root`], so they stay inside the container.
//!
//! Device nodes are created only when running as root (as Docker does outside
//! user namespaces); otherwise they are skipped silently like Docker in a user
//! namespace. AUFS whiteout files (`.wh.*`) are written as ordinary files.
//!
//! TOCTOU: a process inside a *running* container can see the staging
//! directory and race the renames; the daemon should pause the container for
//! the duration, as Docker does.

use std::collections::HashSet;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::resolve::{os_bytes, resolve_in_root};
use crate::{io_ctx, is_root, xattr, Error, Result};

/// How [`extract_to_with`] treats the archive.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Docker's `noOverwriteDirNonDir`: refuse to replace a directory with a
    /// non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
    /// Owner of every extracted entry; `None` keeps the archive's uid/gid.
    /// Docker chowns to the container's root (0:0) by default and to the
    /// container's user with `docker cp -a` (`copyUIDGID`); the daemon knows
    /// that user and passes it here.
    pub chown: Option<(u32, u32)>,
}

/// Extracts a tar (plain or gzip) into container directory `dest_path`.
/// `copy_uid_gid` keeps the archive's ownership; without it everything is
/// owned by 0:0 as Docker's default `ChownOpts`.
pub fn extract_to<R: Read>(
    root: &Path,
    dest_path: &str,
    input: R,
    no_overwrite_dir_non_dir: bool,
    copy_uid_gid: bool,
) -> Result<()> {
    let opts = ExtractOptions { no_overwrite_dir_non_dir, chown: if copy_uid_gid { None } else { Some((0, 0)) } };
    extract_to_with(root, dest_path, input, &opts)
}

/// [`extract_to`] with explicit options.
pub fn extract_to_with<R: Read>(root: &Path, dest_path: &str, input: R, opts: &ExtractOptions) -> Result<()> {
    let abs = format!("/{}", dest_path.trim_start_matches('/'));
    let dest = resolve_in_root(root, &abs, true)?;
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(Error::InvalidArgument("extraction point is not a directory".into())),
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(Error::NotFound(format!("stat {abs}: no such file or directory")))
        }
        Err(e) => return Err(io_ctx(format!("stat {abs}"))(e)),
    }
    let staging = Staging::new(&dest)?;
    let mut x = Extractor { root, abs: &abs, staging: &staging.path, opts, implicit: HashSet::new(), dirs: Vec::new() };

    // Large reads: the body arrives in chunks through a sync bridge, and
    // each small read would be one hop across it.
    let mut buf = BufReader::with_capacity(1 << 20, input);
    let head = buf.fill_buf().map_err(io_ctx("read archive"))?;
    let reader: Box<dyn Read + '_> =
        if head.starts_with(&[0x1f, 0x8b]) { Box::new(flate2::read::GzDecoder::new(buf)) } else { Box::new(buf) };
    let mut ar = tar::Archive::new(reader);
    for entry in ar.entries().map_err(io_ctx("read archive"))? {
        let mut entry = entry.map_err(io_ctx("read archive"))?;
        x.unpack(&mut entry)?;
    }
    // Directory times last: creating their children changed them.
    for (p, t) in x.dirs.iter().rev() {
        set_times(p, *t)?;
    }
    x.merge(&staging.path, &dest, Path::new(""), false)?;
    x.merge(&staging.path, &dest, Path::new(""), true)
}

/// The staging directory; removed (without following symlinks) on drop.
struct Staging {
    path: PathBuf,
}

impl Staging {
    fn new(dest: &Path) -> Result<Self> {
        for _ in 0..16 {
            let mut rnd = [0u8; 8];
            fs::File::open("/dev/urandom")
                .and_then(|mut f| f.read_exact(&mut rnd))
                .map_err(io_ctx("read /dev/urandom"))?;
            let name: String = rnd.iter().map(|b| format!("{b:02x}")).collect();
            let path = dest.join(format!(".berth-cp-{name}"));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_ctx(format!("create {}", path.display()))(e)),
            }
        }
        Err(Error::Io { context: "create staging directory".into(), source: io::ErrorKind::AlreadyExists.into() })
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path) {
            tracing::warn!("removing {}: {e}", self.path.display());
        }
    }
}

struct Extractor<'a> {
    root: &'a Path,
    abs: &'a str,
    staging: &'a Path,
    opts: &'a ExtractOptions,
    /// Staged directories created only as parents of entries: their metadata
    /// must not be applied over existing destination directories.
    implicit: HashSet<PathBuf>,
    dirs: Vec<(PathBuf, i64)>,
}

fn breakout(name: &str, dest: &str) -> Error {
    Error::InvalidArgument(format!("{name:?} is outside of {dest:?}"))
}

/// Cleans an entry name into a path relative to the destination. `None` is
/// the destination itself (`.`), which Docker skips.
fn clean_entry(raw: &[u8], dest: &str) -> Result<Option<PathBuf>> {
    let name = String::from_utf8_lossy(raw);
    let p = Path::new(OsStr::from_bytes(raw));
    let absolute = p.is_absolute();
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            // Go's filepath.Clean clamps `..` at `/` for absolute names; a
            // relative name climbing out is Docker's breakout error.
            Component::ParentDir if !out.pop() && !absolute => return Err(breakout(&name, dest)),
            _ => {}
        }
    }
    Ok(if out.as_os_str().is_empty() { None } else { Some(out) })
}

impl Extractor<'_> {
    fn container_path(&self, host: &Path) -> String {
        match host.strip_prefix(self.root) {
            Ok(r) => format!("/{}", r.display()),
            Err(_) => host.display().to_string(),
        }
    }

    /// Makes sure every parent of `rel` in staging is a real directory,
    /// creating missing ones; a symlink among them is refused.
    fn prepare_parents(&mut self, rel: &Path, name: &str) -> Result<()> {
        let mut cur = PathBuf::new();
        let comps: Vec<_> = rel.components().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            cur.push(c);
            let host = self.staging.join(&cur);
            match fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::InvalidArgument(format!(
                        "{:?} is outside of {:?}: parent {:?} is a symbolic link",
                        name,
                        self.abs,
                        cur.display().to_string()
                    )))
                }
                Ok(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "{name:?}: parent {:?} is not a directory",
                        cur.display().to_string()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&host)
                        .map_err(io_ctx(format!("mkdir {}", host.display())))?;
                    self.implicit.insert(cur.clone());
                }
                Err(e) => return Err(io_ctx(format!("lstat {}", host.display()))(e)),
            }
        }
        Ok(())
    }

    fn unpack<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let Some(rel) = clean_entry(&raw, self.abs)? else { return Ok(()) };
        let h = entry.header().clone();
        let et = h.entry_type();
        if matches!(et, tar::EntryType::XGlobalHeader | tar::EntryType::XHeader) {
            return Ok(());
        }
        self.prepare_parents(&rel, &name)?;
        let path = self.staging.join(&rel);
        let bad = |e: io::Error| Error::InvalidArgument(format!("{name:?}: invalid header: {e}"));
        let mode = h.mode().map_err(bad)? & 0o7777;
        let mtime = h.mtime().map_err(bad)? as i64;
        let (uid, gid) = match self.opts.chown {
            Some(ids) => ids,
            // Empty numeric fields (some writers leave them blank) mean 0.
            None => (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32),
        };
        let ctx = || format!("extract {name}");

        // A later entry of the same name replaces an earlier one, except
        // that two directories merge (Docker's Unpack).
        if let Ok(m) = fs::symlink_metadata(&path) {
            if !(m.is_dir() && et == tar::EntryType::Directory) {
                if m.is_dir() {
                    fs::remove_dir_all(&path).map_err(io_ctx(ctx()))?;
                } else {
                    fs::remove_file(&path).map_err(io_ctx(ctx()))?;
                }
            }
        }

        match et {
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(io_ctx(ctx()))?;
                io::copy(entry, &mut f).map_err(io_ctx(ctx()))?;
            }
            tar::EntryType::Directory => {
                if !path.is_dir() {
                    fs::DirBuilder::new().mode(0o700).create(&path).map_err(io_ctx(ctx()))?;
                }
                self.implicit.remove(&rel);
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::InvalidArgument(format!("{name:?}: symlink without target")))?;
                symlink(OsStr::from_bytes(&target), &path).map_err(io_ctx(ctx()))?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::InvalidArgument(format!("{name:?}: hardlink without target")))?;
                let tname = String::from_utf8_lossy(&target).into_owned();
                let invalid = || {
                    Error::InvalidArgument(format!(
                        "invalid hardlink {name:?} -> {tname:?}: target is not in the archive"
                    ))
                };
                let trel = clean_entry(&target, self.abs).map_err(|_| invalid())?.ok_or_else(invalid)?;
                // Only entries this archive already created, reached without
                // symlinks: never a file of the container or the host.
                let mut cur = self.staging.to_path_buf();
                for c in trel.components() {
                    cur.push(c);
                    let m = fs::symlink_metadata(&cur).map_err(|_| invalid())?;
                    if m.file_type().is_symlink() && cur != self.staging.join(&trel) {
                        return Err(invalid());
                    }
                }
                if fs::symlink_metadata(&cur).map(|m| m.is_dir()).unwrap_or(true) {
                    return Err(invalid());
                }
                fs::hard_link(&cur, &path).map_err(io_ctx(ctx()))?;
                // A hardlink shares its inode: do not touch its metadata.
                return Ok(());
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind = match et {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                if kind != libc::S_IFIFO && !is_root() {
                    tracing::debug!("skipping device node {name}: not root");
                    return Ok(());
                }
                let major = h.device_major().map_err(bad)?.unwrap_or(0);
                let minor = h.device_minor().map_err(bad)?.unwrap_or(0);
                let c = cstr(&path)?;
                // SAFETY: c is a valid NUL-terminated path.
                let r = unsafe { libc::mknod(c.as_ptr(), kind | 0o600, libc::makedev(major, minor)) };
                if r != 0 {
                    return Err(io_ctx(ctx())(io::Error::last_os_error()));
                }
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "{name:?}: unhandled tar header type {:?}",
                    other.as_byte() as char
                )))
            }
        }

        let is_link = et == tar::EntryType::Symlink;
        lchown(&path, uid, gid)?;
        if !is_link {
            // After chown, which clears setuid/setgid.
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_ctx(ctx()))?;
        }
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Some(attr) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    if let Err(e) = xattr::set(&path, attr, ext.value_bytes()) {
                        tracing::debug!("xattr on {name}: {e}");
                    }
                }
            }
        }
        if et == tar::EntryType::Directory {
            self.dirs.push((path, mtime));
        } else {
            set_times(&path, mtime)?;
        }
        Ok(())
    }

    /// Moves the staged tree into `target`. With `commit` false nothing
    /// changes: the pass only finds conflicts, so a refused archive leaves
    /// the destination untouched.
    fn merge(&self, staged: &Path, target: &Path, rel: &Path, commit: bool) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(staged)
            .map_err(io_ctx(format!("read {}", staged.display())))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        let noow = self.opts.no_overwrite_dir_non_dir;
        for n in names {
            let s = staged.join(&n);
            let t = target.join(&n);
            let srel = rel.join(&n);
            let sm = fs::symlink_metadata(&s).map_err(io_ctx(format!("lstat {}", s.display())))?;
            let ctx = || format!("move into {}", self.container_path(&t));
            let tm = match fs::symlink_metadata(&t) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if commit {
                        fs::rename(&s, &t).map_err(io_ctx(ctx()))?;
                    }
                    continue;
                }
                Err(e) => return Err(io_ctx(format!("lstat {}", t.display()))(e)),
            };
            if sm.is_dir() {
                let tdir = if tm.is_dir() {
                    Some(t.clone())
                } else if tm.file_type().is_symlink() {
                    // An existing link in the container (`/lib -> usr/lib`):
                    // follow it, inside the root only.
                    let r = resolve_in_root(self.root, &self.container_path(&t), true)?;
                    let is_dir = fs::symlink_metadata(&r).map(|m| m.is_dir()).unwrap_or(false);
                    (is_dir && !r.starts_with(self.staging)).then_some(r)
                } else {
                    None
                };
                match tdir {
                    Some(td) => {
                        self.merge(&s, &td, &srel, commit)?;
                        if commit && !self.implicit.contains(&srel) {
                            apply_meta(&sm, &td)?;
                        }
                    }
                    None if noow => {
                        return Err(Error::Conflict(format!(
                            "cannot overwrite non-directory {:?} with directory {:?}",
                            self.container_path(&t),
                            self.abs
                        )))
                    }
                    None => {
                        if commit {
                            fs::remove_file(&t).map_err(io_ctx(ctx()))?;
                            fs::rename(&s, &t).map_err(io_ctx(ctx()))?;
                        }
                    }
                }
            } else if tm.is_dir() {
                if noow {
                    return Err(Error::Conflict(format!(
                        "cannot overwrite directory {:?} with non-directory {:?}",
                        self.container_path(&t),
                        self.abs
                    )));
                }
                if commit {
                    fs::remove_dir_all(&t).map_err(io_ctx(ctx()))?;
                    fs::rename(&s, &t).map_err(io_ctx(ctx()))?;
                }
            } else if commit {
                // rename(2) atomically replaces a file or the symlink itself.
                fs::rename(&s, &t).map_err(io_ctx(ctx()))?;
            }
        }
        Ok(())
    }
}

fn cstr(p: &Path) -> Result<CString> {
    CString::new(os_bytes(p)).map_err(|_| Error::InvalidArgument(format!("{}: NUL in path", p.display())))
}

fn lchown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    let c = cstr(p)?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        let e = io::Error::last_os_error();
        // Unprivileged: files stay ours, as with Docker rootless.
        if e.raw_os_error() != Some(libc::EPERM) || is_root() {
            return Err(io_ctx(format!("chown {}", p.display()))(e));
        }
    }
    Ok(())
}

pub(crate) fn set_times(p: &Path, mtime: i64) -> Result<()> {
    set_times_ns(p, mtime, 0)
}

pub(crate) fn set_times_ns(p: &Path, mtime: i64, nsec: i64) -> Result<()> {
    let c = cstr(p)?;
    let ts = libc::timespec { tv_sec: mtime as libc::time_t, tv_nsec: nsec as _ };
    let times = [ts, ts];
    // SAFETY: c is valid and times points at two timespecs.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if r != 0 {
        return Err(io_ctx(format!("set times of {}", p.display()))(io::Error::last_os_error()));
    }
    Ok(())
}

/// Applies a staged directory's owner, mode and mtime to an existing one.
fn apply_meta(m: &fs::Metadata, target: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    lchown(target, m.uid(), m.gid())?;
    fs::set_permissions(target, fs::Permissions::from_mode(m.mode() & 0o7777))
        .map_err(io_ctx(format!("chmod {}", target.display())))?;
    set_times_ns(target, m.mtime(), m.mtime_nsec())
}
