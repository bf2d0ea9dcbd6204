//! Unpacking a Docker layer tar into a fresh directory, in overlayfs form.
//!
//! Follows the semantics of Docker's `pkg/archive` `UnpackLayer` with the
//! overlay2 whiteout converter, with stricter path handling:
//!
//! * Entry names are cleaned lexically: a leading `/` is stripped (as Docker
//!   does), `.` components dropped, and any `..` component refused outright.
//! * Parent directories are walked with `lstat` and must be real directories
//!   inside the destination: a symlink in the parent path of an entry is
//!   refused, whether it points inside or outside. Docker relies on a chroot
//!   for this and containerd on resolving symlinks in scope; a tar made from a
//!   real filesystem never has an entry below a symlink, so refusing is both
//!   safe and compatible (it blocks the `link -> /etc` then `link/passwd`
//!   class of "tar slip" escapes).
//! * Directory modes and times are applied after all entries, but only to
//!   paths still known to be real directories: containerd's CVE-2021-32760 was
//!   a deferred chmod that followed a symlink which replaced the directory.
//! * Nothing is ever opened through a symlink: files are created with
//!   `O_EXCL|O_NOFOLLOW`, an existing non-directory at the entry path is
//!   removed first (Docker's `RemoveAll` rule), and ownership, times and xattrs
//!   use the `l*` / `AT_SYMLINK_NOFOLLOW` variants.
//! * Hardlink targets must name an existing non-directory inside the same
//!   layer, reached without symlinks (Docker's `breakoutError` check).
//!
//! Whiteouts are converted as Docker's overlay2 driver does: `.wh.<name>`
//! becomes a 0/0 character device `<name>`, `.wh..wh..opq` sets the opaque
//! xattr on its directory, other `.wh..wh.` entries (`.wh..wh.plnk` hardlink
//! dirs of AUFS) are ignored.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, FileTimes, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{lchown, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::stat::{makedev, mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};
use tar::EntryType;

use crate::error::{io_err, nix_err, Error, Result};

/// Prefix of whiteout entries in Docker (AUFS-format) layer tars.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Prefix of AUFS metadata entries, which are not files of the layer.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// Entry marking its directory as opaque.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";

/// How to unpack.
#[derive(Debug, Clone)]
pub(crate) struct ExtractOptions {
    /// Apply the uid/gid of entries (needs root; Docker skips it rootless).
    pub chown: bool,
    /// Name of the xattr marking opaque directories: `trusted.overlay.opaque`
    /// as root, `user.overlay.opaque` when unprivileged (overlayfs `userxattr`).
    pub opaque_xattr: &'static str,
}

/// What an extraction produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Extracted {
    /// `sha256:<hex>` of every byte read from the stream.
    pub diff_id: String,
    /// Bytes of regular-file data written.
    pub size: u64,
}

/// Hashes everything read through it, so the diff ID covers the exact stream
/// (padding and trailing blocks included), as the registry's diff_ids do.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads `layer` to its end and returns its diff ID, writing nothing.
pub(crate) fn hash_stream<R: Read>(layer: R) -> Result<String> {
    let mut reader = HashingReader { inner: layer, hasher: Sha256::new() };
    io::copy(&mut reader, &mut io::sink()).map_err(|e| Error::corrupt(None, e))?;
    Ok(format!("sha256:{}", hex::encode(reader.hasher.finalize())))
}

/// Unpacks the uncompressed layer tar `layer` into the existing, empty
/// directory `dest`. On error `dest` holds a partial tree: the caller unpacks
/// into a temporary directory and discards it.
pub(crate) fn extract<R: Read>(dest: &Path, layer: R, opts: &ExtractOptions) -> Result<Extracted> {
    let reader = HashingReader { inner: layer, hasher: Sha256::new() };
    let mut archive = tar::Archive::new(reader);
    let mut unpacker =
        Unpacker { dest, opts, known_dirs: HashSet::new(), dirs: Vec::new(), size: 0, buf: vec![0u8; 128 * 1024] };
    {
        let entries = archive.entries().map_err(|e| Error::corrupt(None, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| Error::corrupt(None, e))?;
            unpacker.unpack(&mut entry)?;
        }
    }
    unpacker.finish()?;
    // Hash what follows the end-of-archive marker too (the second zero block
    // and any record padding): the diff ID is the digest of the whole stream.
    let mut reader = archive.into_inner();
    io::copy(&mut reader, &mut io::sink()).map_err(|e| Error::corrupt(None, e))?;
    Ok(Extracted { diff_id: format!("sha256:{}", hex::encode(reader.hasher.finalize())), size: unpacker.size })
}

/// Metadata of a directory, applied after all entries: creating children
/// changes a directory's mtime, and an unprivileged unpacker could not create
/// children in a directory whose mode lacks owner write (Docker's UnpackLayer
/// also sets directory times last).
struct DirMeta {
    rel: PathBuf,
    mode: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
}

/// Per-entry metadata from the header and its PAX records.
struct EntryMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Unpacker<'a> {
    dest: &'a Path,
    opts: &'a ExtractOptions,
    /// Relative directories already verified to be real directories.
    known_dirs: HashSet<PathBuf>,
    dirs: Vec<DirMeta>,
    size: u64,
    buf: Vec<u8>,
}

/// Splits an entry name into cleaned components: empty and `.` components are
/// dropped (which also strips a leading `/`, as Docker does), `..` is refused.
fn clean_components<'p>(raw: &'p [u8], what: &[u8]) -> Result<Vec<&'p [u8]>> {
    if raw.contains(&0) {
        return Err(Error::unsafe_entry(what, "name contains a NUL byte"));
    }
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(Error::unsafe_entry(what, "path has a `..` component (would escape the layer root)")),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn rel_path(components: &[&[u8]]) -> PathBuf {
    components.iter().map(|c| OsStr::from_bytes(c)).collect()
}

fn not_found(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
}

/// Parses a PAX time (`1700000000.123456789`, possibly negative).
fn parse_pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    let mut scale = 100_000_000;
    for b in frac.bytes().take(9) {
        if !b.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(b - b'0') * scale;
        scale /= 10;
    }
    let (secs, nanos) = if neg && nanos > 0 {
        (-secs - 1, 1_000_000_000 - nanos)
    } else if neg {
        (-secs, 0)
    } else {
        (secs, nanos)
    };
    Some(TimeSpec::new(secs, nanos))
}

fn timespec_to_system(t: TimeSpec) -> SystemTime {
    let nanos = Duration::from_nanos(u64::try_from(t.tv_nsec()).unwrap_or(0));
    match u64::try_from(t.tv_sec()) {
        Ok(s) => UNIX_EPOCH + Duration::from_secs(s) + nanos,
        Err(_) => UNIX_EPOCH
            .checked_sub(Duration::from_secs(t.tv_sec().unsigned_abs()))
            .map(|b| b + nanos)
            .unwrap_or(UNIX_EPOCH),
    }
}

/// Whether an xattr error should be skipped with a warning rather than fail
/// the layer: Docker does this for ENOTSUP and EPERM (unprivileged or
/// user-namespaced daemons cannot set `trusted.*`/`security.*`, symlinks
/// cannot carry `user.*`).
fn xattr_error_skippable(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::ENOTSUP) | Some(libc::EACCES))
}

/// Overlay-private xattrs must never come from a layer: overlayfs trusts them
/// on lower layers (opaque, redirect, origin, metacopy), so a crafted layer
/// could hide or redirect files of other layers. The layer format expresses
/// opacity with `.wh..wh..opq` entries instead.
fn is_overlay_xattr(name: &str) -> bool {
    name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")
}

impl Unpacker<'_> {
    fn unpack<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let etype = entry.header().entry_type();
        if etype.is_pax_global_extensions() {
            // Docker: "PAX Global Extended Headers found and ignored".
            return Ok(());
        }
        let meta = read_meta(entry, &raw)?;
        let components = clean_components(&raw, &raw)?;
        if components.first().is_some_and(|c| {
            c.starts_with(WHITEOUT_META_PREFIX.as_bytes()) && (components.len() > 1 || *c != WHITEOUT_OPAQUE.as_bytes())
        }) {
            // AUFS metadata directories (`.wh..wh.plnk`, `.wh..wh.aufs`) are
            // not part of the layer; Docker's UnpackLayer skips them too.
            tracing::debug!(entry = %String::from_utf8_lossy(&raw), "skipping AUFS metadata entry");
            return Ok(());
        }
        let Some((name, parents)) = components.split_last() else {
            // The layer root itself (`./` or `/`): Docker applies its metadata
            // to the layer directory.
            if !etype.is_dir() {
                return Err(Error::unsafe_entry(&raw, "the layer root entry is not a directory"));
            }
            self.apply_owner_xattrs(self.dest, &meta, &raw)?;
            self.dirs.push(DirMeta { rel: PathBuf::new(), mode: meta.mode, atime: meta.atime, mtime: meta.mtime });
            return Ok(());
        };

        if name.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parents, name, &meta, &raw);
        }

        self.ensure_parents(parents, &raw)?;
        let rel = rel_path(&components);
        let path = self.dest.join(&rel);

        // A later entry replaces an earlier one; only a directory over a
        // directory is merged (Docker's UnpackLayer `RemoveAll` rule).
        let existing = match fs::symlink_metadata(&path) {
            Ok(m) => Some(m),
            Err(e) if not_found(&e) => None,
            Err(e) => return Err(io_err("lstat", &path)(e)),
        };
        let keep_dir = etype.is_dir() && existing.as_ref().is_some_and(|m| m.is_dir());
        if let (Some(m), false) = (&existing, keep_dir) {
            self.remove_existing(&rel, m.is_dir())?;
        }

        match etype {
            EntryType::Directory => {
                if !keep_dir {
                    fs::DirBuilder::new().create(&path).map_err(io_err("create directory", &path))?;
                }
                self.known_dirs.insert(rel.clone());
                self.apply_owner_xattrs(&path, &meta, &raw)?;
                self.dirs.push(DirMeta { rel, mode: meta.mode, atime: meta.atime, mtime: meta.mtime });
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, &path, &meta, &raw)?;
            }
            EntryType::Symlink => {
                let target =
                    entry.link_name_bytes().ok_or_else(|| Error::unsafe_entry(&raw, "symlink without a target"))?;
                if target.is_empty() {
                    return Err(Error::unsafe_entry(&raw, "symlink with an empty target"));
                }
                // The target is stored as is and never followed here; it is
                // resolved inside the container's root at run time.
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path).map_err(io_err("symlink", &path))?;
                self.apply_owner_xattrs(&path, &meta, &raw)?;
                set_times_nofollow(&path, meta.atime, meta.mtime)?;
            }
            EntryType::Link => self.hardlink(entry, &rel, &path, &raw)?,
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                self.special(entry, etype, &path, &meta, &raw)?;
            }
            other => {
                return Err(Error::unsafe_entry(
                    &raw,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ))
            }
        }
        Ok(())
    }

    /// Walks the parent components of an entry, creating missing directories
    /// (mode 0755, as Docker's MkdirAll) and refusing symlinks and
    /// non-directories.
    fn ensure_parents(&mut self, parents: &[&[u8]], raw: &[u8]) -> Result<()> {
        let mut rel = PathBuf::new();
        for c in parents {
            rel.push(OsStr::from_bytes(c));
            if self.known_dirs.contains(&rel) {
                continue;
            }
            let full = self.dest.join(&rel);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::unsafe_entry(
                        raw,
                        format!("parent {} is a symlink; layer extraction never follows symlinks", rel.display()),
                    ))
                }
                Ok(_) => return Err(Error::unsafe_entry(raw, format!("parent {} is not a directory", rel.display()))),
                Err(e) if not_found(&e) => crate::store::mkdir_mode(&full, 0o755)?,
                Err(e) => return Err(io_err("lstat", &full)(e)),
            }
            self.known_dirs.insert(rel.clone());
        }
        Ok(())
    }

    /// Removes what an entry replaces and forgets everything cached below it.
    fn remove_existing(&mut self, rel: &Path, is_dir: bool) -> Result<()> {
        let path = self.dest.join(rel);
        if is_dir {
            crate::store::remove_tree(&path)?;
        } else {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
        // Deferred directory metadata below a replaced path must not be
        // applied later: the path may by then be a symlink pointing anywhere.
        self.known_dirs.retain(|d| !d.starts_with(rel));
        self.dirs.retain(|d| !d.rel.starts_with(rel));
        Ok(())
    }

    fn whiteout(&mut self, parents: &[&[u8]], name: &[u8], meta: &EntryMeta, raw: &[u8]) -> Result<()> {
        if name.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
            if name == WHITEOUT_OPAQUE.as_bytes() {
                self.ensure_parents(parents, raw)?;
                let dir = self.dest.join(rel_path(parents));
                xattr::set(&dir, self.opts.opaque_xattr, b"y").map_err(io_err("set opaque xattr on", &dir))?;
            } else {
                tracing::debug!(
                    entry = %String::from_utf8_lossy(raw),
                    "ignoring AUFS metadata entry"
                );
            }
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(Error::unsafe_entry(raw, "whiteout without a valid name"));
        }
        self.ensure_parents(parents, raw)?;
        let mut components = parents.to_vec();
        components.push(hidden);
        let rel = rel_path(&components);
        let path = self.dest.join(&rel);
        match fs::symlink_metadata(&path) {
            Ok(m) => self.remove_existing(&rel, m.is_dir())?,
            Err(e) if not_found(&e) => {}
            Err(e) => return Err(io_err("lstat", &path)(e)),
        }
        // Overlay whiteout: a character device 0/0 (Docker overlay2
        // ConvertWrite: mknod S_IFCHR 0, then chown to the entry's owner).
        // Since Linux 5.8 unprivileged users may create it too.
        mknod(&path, SFlag::S_IFCHR, Mode::empty(), 0).map_err(nix_err("mknod whiteout", &path))?;
        if self.opts.chown {
            lchown(&path, Some(meta.uid), Some(meta.gid)).map_err(io_err("lchown", &path))?;
        }
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &Path,
        meta: &EntryMeta,
        raw: &[u8],
    ) -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(io_err("create", path))?;
        let expected = entry.size();
        let mut written: u64 = 0;
        loop {
            let n = match entry.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::corrupt(Some(raw), e)),
            };
            file.write_all(&self.buf[..n]).map_err(io_err("write", path))?;
            written += n as u64;
        }
        if written != expected {
            return Err(Error::corrupt(
                Some(raw),
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("file data ends after {written} of {expected} bytes"),
                ),
            ));
        }
        self.size += written;
        // chown before chmod (chown clears setuid bits) and before xattrs
        // (chown clears security.capability), as Docker's createTarFile.
        if self.opts.chown {
            std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid)).map_err(io_err("fchown", path))?;
        }
        file.set_permissions(fs::Permissions::from_mode(meta.mode)).map_err(io_err("fchmod", path))?;
        for (name, value) in &meta.xattrs {
            set_xattr(path, name, value, raw)?;
        }
        file.set_times(
            FileTimes::new().set_accessed(timespec_to_system(meta.atime)).set_modified(timespec_to_system(meta.mtime)),
        )
        .map_err(io_err("set times", path))?;
        Ok(())
    }

    fn hardlink<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, rel: &Path, path: &Path, raw: &[u8]) -> Result<()> {
        let link =
            entry.link_name_bytes().ok_or_else(|| Error::unsafe_entry(raw, "hardlink without a target"))?.into_owned();
        let target_components = clean_components(&link, raw)?;
        let Some((_, target_parents)) = target_components.split_last() else {
            return Err(Error::unsafe_entry(raw, "hardlink to the layer root"));
        };
        let mut dir = PathBuf::new();
        for c in target_parents {
            dir.push(OsStr::from_bytes(c));
            let full = self.dest.join(&dir);
            match fs::symlink_metadata(&full) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::unsafe_entry(
                        raw,
                        format!(
                            "hardlink target {} passes through {}, which is not a directory",
                            String::from_utf8_lossy(&link),
                            dir.display()
                        ),
                    ))
                }
                Err(e) if not_found(&e) => {
                    return Err(Error::unsafe_entry(
                        raw,
                        format!("hardlink target {} is not in this layer", String::from_utf8_lossy(&link)),
                    ))
                }
                Err(e) => return Err(io_err("lstat", &full)(e)),
            }
        }
        let target_rel = rel_path(&target_components);
        if target_rel == rel {
            return Err(Error::unsafe_entry(raw, "hardlink to itself"));
        }
        let target = self.dest.join(&target_rel);
        match fs::symlink_metadata(&target) {
            Ok(m) if !m.is_dir() => {}
            Ok(_) => return Err(Error::unsafe_entry(raw, "hardlink to a directory")),
            Err(e) if not_found(&e) => {
                return Err(Error::unsafe_entry(
                    raw,
                    format!("hardlink target {} is not in this layer", String::from_utf8_lossy(&link)),
                ))
            }
            Err(e) => return Err(io_err("lstat", &target)(e)),
        }
        // link(2) via linkat without AT_SYMLINK_FOLLOW: a symlink target is
        // linked itself, never followed. The inode's metadata came with its
        // first entry, so none is applied here.
        fs::hard_link(&target, path).map_err(io_err("link", path))
    }

    fn special<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        etype: EntryType,
        path: &Path,
        meta: &EntryMeta,
        raw: &[u8],
    ) -> Result<()> {
        let header = entry.header();
        let (kind, dev) = match etype {
            EntryType::Fifo => (SFlag::S_IFIFO, 0),
            _ => {
                let (major_field, minor_field) = match header.as_ustar() {
                    Some(u) => (&u.dev_major[..], &u.dev_minor[..]),
                    None => match header.as_gnu() {
                        Some(g) => (&g.dev_major[..], &g.dev_minor[..]),
                        None => (&[][..], &[][..]),
                    },
                };
                let major = numeric(major_field, || header.device_major().map(|d| u64::from(d.unwrap_or(0))))
                    .map_err(|e| Error::corrupt(Some(raw), e))?;
                let minor = numeric(minor_field, || header.device_minor().map(|d| u64::from(d.unwrap_or(0))))
                    .map_err(|e| Error::corrupt(Some(raw), e))?;
                let kind = if etype == EntryType::Char { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
                (kind, makedev(major, minor))
            }
        };
        match mknod(path, kind, Mode::from_bits_truncate(meta.mode & 0o777), dev) {
            Ok(()) => {}
            Err(nix::Error::EPERM) if kind != SFlag::S_IFIFO => {
                // Docker skips device nodes it may not create (rootless, user
                // namespaces): the runtime provides /dev anyway.
                tracing::debug!(
                    entry = %String::from_utf8_lossy(raw),
                    "skipping device node: mknod not permitted"
                );
                return Ok(());
            }
            Err(e) => return Err(nix_err("mknod", path)(e)),
        }
        if self.opts.chown {
            lchown(path, Some(meta.uid), Some(meta.gid)).map_err(io_err("lchown", path))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(meta.mode)).map_err(io_err("chmod", path))?;
        for (name, value) in &meta.xattrs {
            set_xattr(path, name, value, raw)?;
        }
        set_times_nofollow(path, meta.atime, meta.mtime)
    }

    fn apply_owner_xattrs(&self, path: &Path, meta: &EntryMeta, raw: &[u8]) -> Result<()> {
        if self.opts.chown {
            lchown(path, Some(meta.uid), Some(meta.gid)).map_err(io_err("lchown", path))?;
        }
        for (name, value) in &meta.xattrs {
            set_xattr(path, name, value, raw)?;
        }
        Ok(())
    }

    /// Applies deferred directory modes and times, children before parents.
    fn finish(&mut self) -> Result<()> {
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by(|a, b| b.rel.cmp(&a.rel));
        for d in dirs {
            let path = self.dest.join(&d.rel);
            // Only real directories: replaced paths were dropped from the
            // list, this is a second guard against following a symlink.
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                _ => continue,
            }
            fs::set_permissions(&path, fs::Permissions::from_mode(d.mode)).map_err(io_err("chmod", &path))?;
            set_times_nofollow(&path, d.atime, d.mtime)?;
        }
        Ok(())
    }
}

fn set_times_nofollow(path: &Path, atime: TimeSpec, mtime: TimeSpec) -> Result<()> {
    utimensat(None, path, &atime, &mtime, UtimensatFlags::NoFollowSymlink).map_err(nix_err("set times", path))
}

fn set_xattr(path: &Path, name: &str, value: &[u8], raw: &[u8]) -> Result<()> {
    match xattr::set(path, name, value) {
        Ok(()) => Ok(()),
        Err(e) if xattr_error_skippable(&e) => {
            tracing::warn!(
                entry = %String::from_utf8_lossy(raw),
                xattr = name,
                error = %e,
                "skipping xattr the filesystem or our privileges do not allow"
            );
            Ok(())
        }
        Err(e) => Err(io_err("set xattr on", path)(e)),
    }
}

/// Parses a numeric header field, reading an empty one (all NULs or spaces)
/// as 0 like Go's archive/tar, which produced and reads most layers; the tar
/// crate refuses such fields.
fn numeric(field: &[u8], parse: impl FnOnce() -> io::Result<u64>) -> io::Result<u64> {
    if field.iter().all(|&b| b == 0 || b == b' ') {
        Ok(0)
    } else {
        parse()
    }
}

fn read_meta<R: Read>(entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<EntryMeta> {
    let header = entry.header();
    let corrupt = |e| Error::corrupt(Some(raw), e);
    let old = header.as_old();
    let mode = numeric(&old.mode, || header.mode().map(u64::from)).map_err(corrupt)? as u32 & 0o7777;
    let uid = u32::try_from(numeric(&old.uid, || header.uid()).map_err(corrupt)?)
        .map_err(|_| Error::unsafe_entry(raw, "uid does not fit 32 bits"))?;
    let gid = u32::try_from(numeric(&old.gid, || header.gid()).map_err(corrupt)?)
        .map_err(|_| Error::unsafe_entry(raw, "gid does not fit 32 bits"))?;
    let header_mtime = numeric(&old.mtime, || header.mtime()).map_err(corrupt)?;
    let mut mtime = TimeSpec::new(i64::try_from(header_mtime).unwrap_or(i64::MAX), 0);
    let mut atime = None;
    let mut xattrs = Vec::new();
    if let Some(pax) = entry.pax_extensions().map_err(corrupt)? {
        for ext in pax {
            let ext = ext.map_err(corrupt)?;
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                if is_overlay_xattr(name) {
                    tracing::warn!(
                        entry = %String::from_utf8_lossy(raw),
                        xattr = name,
                        "dropping overlay-private xattr from layer"
                    );
                } else {
                    xattrs.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            } else if key == "mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    mtime = t;
                }
            } else if key == "atime" {
                atime = parse_pax_time(ext.value_bytes());
            }
        }
    }
    // Docker: "Last access time should never be before last modified time".
    let atime = match atime {
        Some(a) if a >= mtime => a,
        _ => mtime,
    };
    Ok(EntryMeta { mode, uid, gid, atime, mtime, xattrs })
}

#[cfg(test)]
#[path = "extract_tests.rs"]
pub(crate) mod tests;
