//! The snapshotter proper: snapshot lifecycle, metadata index and mounts.
//!
//! The model is containerd's: committed snapshots are read-only and may be
//! parents; active snapshots are writable and become committed through
//! `commit`; views are read-only and never committed. All three share one
//! key namespace. The overlay layout is Docker's overlay2: a `fs` directory
//! per layer and a short `l/<id>` link to it, used in lowerdir.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::diff::write_diff;
use crate::error::{io_err, Error, Result};
use crate::extract::{extract, hash_stream, ExtractOptions};
use crate::mount::Mount;
use crate::store::{
    dir_name, fsync_dir, link_id, mkdir_mode, remove_tree, syncfs, validate_diff_id, validate_key, write_synced, Meta,
    SnapshotKind,
};

/// Overlay stacks deeper than this are refused; the kernel's own limit
/// (OVL_MAX_STACK) is 500 and Docker stops at 125 layers.
const MAX_CHAIN: usize = 500;

/// Outcome of [`Snapshotter::apply_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyResult {
    /// `sha256:<hex>` of the uncompressed tar stream.
    pub diff_id: String,
    /// Bytes of file data unpacked.
    pub size: u64,
}

/// One snapshot as listed by [`Snapshotter::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub key: String,
    pub parent: Option<String>,
    pub kind: SnapshotKind,
}

/// Snapshots under one root directory. `Send + Sync`; share it in an `Arc`.
/// Only one `Snapshotter` may use a root at a time (it empties `tmp/` when
/// created).
#[derive(Debug)]
pub struct Snapshotter {
    root: PathBuf,
    snapshots: PathBuf,
    links: PathBuf,
    tmp: PathBuf,
    /// key -> metadata of every snapshot; the disk is the source of truth at
    /// start, this index afterwards. Held only for metadata changes, never
    /// while a layer is unpacked.
    index: Mutex<HashMap<String, Meta>>,
    seq: AtomicU64,
    extract_opts: ExtractOptions,
    /// Options put in front of every overlay mount (see `overlay_options`).
    overlay_opts: Vec<String>,
}

/// Overlay options needed on this kernel. `index`, `redirect_dir` and
/// `metacopy` change what an upper directory holds (origin file handles,
/// redirect xattrs instead of copied-up directories, metadata-only copy-ups),
/// which would make `diff` of the upper directory wrong; Docker's overlay2
/// falls back to a slow naive diff when they are on. We turn off whichever
/// the running kernel enables by default. Unprivileged, overlay must use
/// `user.overlay.*` xattrs (`userxattr`, Linux 5.11+), matching how layers
/// are unpacked then.
fn overlay_options(privileged: bool) -> Vec<String> {
    let mut opts = Vec::new();
    for feature in ["index", "redirect_dir", "metacopy"] {
        let param = Path::new("/sys/module/overlay/parameters").join(feature);
        if let Ok(v) = fs::read_to_string(&param) {
            if v.trim_start().starts_with(['Y', 'y']) || v.trim() == "on" {
                opts.push(format!("{feature}=off"));
            }
        }
    }
    if !privileged {
        opts.push("userxattr".to_string());
    }
    opts
}

fn path_str(path: &Path) -> Result<String> {
    path.to_str().map(str::to_string).ok_or_else(|| Error::invalid(&path.to_string_lossy(), "path is not valid UTF-8"))
}

impl Snapshotter {
    /// Opens the snapshotter at `root`, creating its directories, finishing
    /// or discarding commits interrupted by a crash, and removing what a crash
    /// left in `tmp/` and dangling links.
    pub fn new(root: &Path) -> Result<Self> {
        fs::DirBuilder::new().recursive(true).create(root).map_err(io_err("create directory", root))?;
        let root = fs::canonicalize(root).map_err(io_err("resolve", root))?;
        let root_str = path_str(&root)?;
        // The root ends up inside overlay's comma- and colon-separated option
        // string; those characters cannot be escaped reliably there.
        if root_str.contains([',', ':', '=']) {
            return Err(Error::invalid(
                &root_str,
                "snapshot root must not contain ',', ':' or '=' (overlay option separators)",
            ));
        }
        let snapshots = root.join("snapshots");
        let links = root.join("l");
        let tmp = root.join("tmp");
        for dir in [&snapshots, &links] {
            match fs::symlink_metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(Error::invalid(&dir.to_string_lossy(), "exists and is not a directory")),
                Err(_) => mkdir_mode(dir, 0o700)?,
            }
        }
        remove_tree(&tmp)?;
        mkdir_mode(&tmp, 0o700)?;

        let privileged = nix::unistd::geteuid().is_root();
        let snapshotter = Snapshotter {
            root,
            snapshots,
            links,
            tmp,
            index: Mutex::new(HashMap::new()),
            seq: AtomicU64::new(0),
            extract_opts: ExtractOptions {
                chown: privileged,
                opaque_xattr: if privileged { "trusted.overlay.opaque" } else { "user.overlay.opaque" },
            },
            overlay_opts: overlay_options(privileged),
        };
        snapshotter.load()?;
        Ok(snapshotter)
    }

    /// The root directory (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn load(&self) -> Result<()> {
        let mut index = self.lock();
        let entries = fs::read_dir(&self.snapshots).map_err(io_err("read", &self.snapshots))?;
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.snapshots))?;
            let dir = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            match self.recover_one(&dir, &name) {
                Ok(Some(meta)) => {
                    index.insert(meta.key.clone(), meta);
                }
                Ok(None) => {}
                Err(e @ Error::BadMetadata { .. }) => {
                    // Only a damaged disk produces this: metadata is written
                    // before the directory is renamed into place.
                    tracing::warn!(dir = %dir.display(), error = %e, "removing unreadable snapshot");
                    remove_tree(&dir)?;
                }
                Err(e) => return Err(e),
            }
        }
        for (key, meta) in index.iter() {
            if let Some(p) = &meta.parent {
                if !index.contains_key(p) {
                    tracing::warn!(key = %key, parent = %p, "snapshot parent is missing");
                }
            }
        }
        // Links: drop those no committed snapshot owns, recreate missing ones.
        let wanted: HashSet<String> =
            index.iter().filter(|(_, m)| m.kind == SnapshotKind::Committed).map(|(k, _)| link_id(k)).collect();
        let entries = fs::read_dir(&self.links).map_err(io_err("read", &self.links))?;
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.links))?;
            if !wanted.contains(entry.file_name().to_string_lossy().as_ref()) {
                let p = entry.path();
                fs::remove_file(&p).map_err(io_err("remove", &p))?;
            }
        }
        for (key, meta) in index.iter() {
            if meta.kind == SnapshotKind::Committed {
                self.ensure_link(key)?;
            }
        }
        Ok(())
    }

    /// Reads one snapshot directory, finishing an interrupted commit: the
    /// new metadata is written as `meta.commit` before the directory is
    /// renamed, so a `meta.commit` whose key hashes to the directory name
    /// means the rename happened.
    fn recover_one(&self, dir: &Path, name: &str) -> Result<Option<Meta>> {
        let pending = dir.join("meta.commit");
        let meta_path = dir.join("meta");
        if pending.exists() {
            let m = Meta::read(&pending)?;
            if dir_name(&m.key) == name {
                fs::rename(&pending, &meta_path).map_err(io_err("rename", &pending))?;
            } else {
                fs::remove_file(&pending).map_err(io_err("remove", &pending))?;
            }
        }
        if !meta_path.exists() {
            return Err(Error::BadMetadata { path: meta_path, reason: "missing".into() });
        }
        let meta = Meta::read(&meta_path)?;
        if dir_name(&meta.key) != name {
            return Err(Error::BadMetadata {
                path: meta_path,
                reason: format!("key {:?} does not belong to directory {name}", meta.key),
            });
        }
        if meta.kind == SnapshotKind::Committed {
            let work = dir.join("work");
            if work.exists() {
                remove_tree(&work)?;
            }
        }
        Ok(Some(meta))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Meta>> {
        // The index is updated only after the disk change succeeded, so it is
        // consistent even if a holder panicked.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn snap_dir(&self, key: &str) -> PathBuf {
        self.snapshots.join(dir_name(key))
    }

    fn fs_dir(&self, key: &str) -> PathBuf {
        self.snap_dir(key).join("fs")
    }

    fn link_path(&self, key: &str) -> PathBuf {
        self.links.join(link_id(key))
    }

    /// Makes `l/<id>` point at the snapshot's fs dir (relative, so the root
    /// can move). Idempotent and safe against a concurrent creator.
    fn ensure_link(&self, key: &str) -> Result<()> {
        let link = self.link_path(key);
        let target = Path::new("../snapshots").join(dir_name(key)).join("fs");
        match fs::read_link(&link) {
            Ok(t) if t == target => return Ok(()),
            Ok(_) => fs::remove_file(&link).map_err(io_err("remove", &link))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(_) => remove_tree(&link)?,
        }
        match std::os::unix::fs::symlink(&target, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(io_err("symlink", &link)(e)),
        }
    }

    fn new_tmp(&self, what: &str) -> Result<PathBuf> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let dir = self.tmp.join(format!("{what}-{}-{n}", std::process::id()));
        mkdir_mode(&dir, 0o700)?;
        Ok(dir)
    }

    fn discard(&self, dir: &Path) {
        if let Err(e) = remove_tree(dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove temporary directory; it goes at next start");
        }
    }

    fn check_parent(index: &HashMap<String, Meta>, parent: Option<&str>) -> Result<()> {
        let Some(p) = parent else { return Ok(()) };
        match index.get(p) {
            Some(m) if m.kind == SnapshotKind::Committed => Ok(()),
            Some(m) => Err(Error::WrongKind { key: p.to_string(), actual: m.kind.as_str(), expected: "committed" }),
            None => Err(Error::NotFound(p.to_string())),
        }
    }

    /// Whether a committed snapshot `key` exists.
    pub fn exists(&self, key: &str) -> bool {
        self.lock().get(key).is_some_and(|m| m.kind == SnapshotKind::Committed)
    }

    /// Every snapshot, in no particular order.
    pub fn list(&self) -> Vec<SnapshotInfo> {
        self.lock()
            .values()
            .map(|m| SnapshotInfo { key: m.key.clone(), parent: m.parent.clone(), kind: m.kind })
            .collect()
    }

    /// Unpacks an *uncompressed* layer tar stream as committed snapshot `key`
    /// on top of `parent` (which must be committed).
    ///
    /// The stream is hashed while it is unpacked into a temporary directory;
    /// on a digest mismatch, a refused entry or a corrupt stream the directory
    /// is discarded and nothing is left in the store. Only a complete,
    /// synced tree is renamed into place.
    ///
    /// If `key` already exists the stream is still read to its end (callers
    /// may tee it into the content store) and checked, but nothing is
    /// unpacked. Concurrent calls for one key both unpack; the first rename
    /// wins and the other discards its copy.
    pub fn apply_layer(
        &self,
        key: &str,
        parent: Option<&str>,
        layer: impl Read,
        expected_diff_id: Option<&str>,
    ) -> Result<ApplyResult> {
        validate_key(key)?;
        if let Some(p) = parent {
            validate_key(p)?;
        }
        if let Some(d) = expected_diff_id {
            validate_diff_id(d)?;
        }
        {
            let index = self.lock();
            if let Some(m) = index.get(key) {
                if m.kind != SnapshotKind::Committed {
                    return Err(Error::AlreadyExists(key.to_string()));
                }
                let stored = (m.diff_id.clone(), m.size);
                drop(index);
                return self.drain_existing(key, layer, expected_diff_id, stored);
            }
            Self::check_parent(&index, parent)?;
        }
        let tmp = self.new_tmp("apply")?;
        let res = self.apply_into(&tmp, key, parent, layer, expected_diff_id);
        // After a successful rename `tmp` is gone; otherwise discard it.
        if tmp.exists() {
            self.discard(&tmp);
        }
        res
    }

    fn drain_existing(
        &self,
        key: &str,
        layer: impl Read,
        expected: Option<&str>,
        (stored_diff_id, stored_size): (Option<String>, Option<u64>),
    ) -> Result<ApplyResult> {
        let diff_id = hash_stream(layer)?;
        for want in [expected, stored_diff_id.as_deref()].into_iter().flatten() {
            if want != diff_id {
                return Err(Error::DiffIdMismatch { expected: want.to_string(), actual: diff_id });
            }
        }
        let size = match stored_size {
            Some(s) => s,
            None => self.usage(key)?,
        };
        Ok(ApplyResult { diff_id, size })
    }

    fn apply_into(
        &self,
        tmp: &Path,
        key: &str,
        parent: Option<&str>,
        layer: impl Read,
        expected: Option<&str>,
    ) -> Result<ApplyResult> {
        let fs_dir = tmp.join("fs");
        mkdir_mode(&fs_dir, 0o755)?;
        let extracted = extract(&fs_dir, layer, &self.extract_opts)?;
        if let Some(want) = expected {
            if want != extracted.diff_id {
                return Err(Error::DiffIdMismatch { expected: want.to_string(), actual: extracted.diff_id });
            }
        }
        let meta = Meta {
            kind: SnapshotKind::Committed,
            key: key.to_string(),
            parent: parent.map(str::to_string),
            diff_id: Some(extracted.diff_id.clone()),
            size: Some(extracted.size),
        };
        write_synced(&tmp.join("meta"), meta.encode().as_bytes())?;
        syncfs(tmp)?;
        let result = ApplyResult { diff_id: extracted.diff_id, size: extracted.size };

        let mut index = self.lock();
        match index.get(key) {
            Some(m) if m.kind == SnapshotKind::Committed => return Ok(result),
            Some(_) => return Err(Error::AlreadyExists(key.to_string())),
            None => {}
        }
        // The parent may have been removed while we were unpacking.
        Self::check_parent(&index, parent)?;
        let dest = self.snap_dir(key);
        fs::rename(tmp, &dest).map_err(io_err("rename into place", &dest))?;
        index.insert(key.to_string(), meta);
        fsync_dir(&self.snapshots)?;
        self.ensure_link(key)?;
        Ok(result)
    }

    /// Creates active (writable) snapshot `key` on top of committed `parent`
    /// and returns the mounts that assemble it.
    pub fn prepare(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.create(SnapshotKind::Active, key, parent)
    }

    /// Creates read-only view `key` of committed `parent` and returns its
    /// mounts.
    pub fn view(&self, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        self.create(SnapshotKind::View, key, parent)
    }

    fn create(&self, kind: SnapshotKind, key: &str, parent: Option<&str>) -> Result<Vec<Mount>> {
        validate_key(key)?;
        if let Some(p) = parent {
            validate_key(p)?;
        }
        let mut index = self.lock();
        if index.contains_key(key) {
            return Err(Error::AlreadyExists(key.to_string()));
        }
        Self::check_parent(&index, parent)?;
        let tmp = self.new_tmp(kind.as_str())?;
        let meta = Meta { kind, key: key.to_string(), parent: parent.map(str::to_string), diff_id: None, size: None };
        let res = (|| {
            mkdir_mode(&tmp.join("fs"), 0o755)?;
            if kind == SnapshotKind::Active && parent.is_some() {
                mkdir_mode(&tmp.join("work"), 0o700)?;
            }
            write_synced(&tmp.join("meta"), meta.encode().as_bytes())?;
            let dest = self.snap_dir(key);
            fs::rename(&tmp, &dest).map_err(io_err("rename into place", &dest))
        })();
        if let Err(e) = res {
            self.discard(&tmp);
            return Err(e);
        }
        index.insert(key.to_string(), meta);
        fsync_dir(&self.snapshots)?;
        self.mounts_locked(&index, key)
    }

    /// Mounts of existing snapshot `key`. For a committed snapshot this is a
    /// read-only view of it (containerd refuses; being lenient costs nothing
    /// and serves `cp`/`export` from images).
    pub fn mounts(&self, key: &str) -> Result<Vec<Mount>> {
        let index = self.lock();
        self.mounts_locked(&index, key)
    }

    /// Parent keys of `parent`, topmost first.
    fn chain(&self, index: &HashMap<String, Meta>, parent: Option<&str>) -> Result<Vec<String>> {
        let mut chain = Vec::new();
        let mut next = parent.map(str::to_string);
        while let Some(k) = next {
            if chain.len() >= MAX_CHAIN {
                return Err(Error::invalid(&k, format!("snapshot chain deeper than {MAX_CHAIN} layers")));
            }
            let m = index.get(&k).ok_or_else(|| Error::NotFound(k.clone()))?;
            next = m.parent.clone();
            chain.push(k);
        }
        Ok(chain)
    }

    fn mounts_locked(&self, index: &HashMap<String, Meta>, key: &str) -> Result<Vec<Mount>> {
        let meta = index.get(key).ok_or_else(|| Error::NotFound(key.to_string()))?;
        let own_fs = path_str(&self.fs_dir(key))?;
        let (writable, lowers) = match meta.kind {
            SnapshotKind::Active => (true, self.chain(index, meta.parent.as_deref())?),
            SnapshotKind::View => (false, self.chain(index, meta.parent.as_deref())?),
            SnapshotKind::Committed => (false, self.chain(index, Some(key))?),
        };
        let bind = |source: String, rw: bool| Mount {
            kind: "bind".to_string(),
            source,
            options: vec!["rbind".to_string(), if rw { "rw" } else { "ro" }.to_string()],
        };
        if writable && lowers.is_empty() {
            return Ok(vec![bind(own_fs, true)]);
        }
        if !writable {
            match lowers.as_slice() {
                [] => return Ok(vec![bind(own_fs, false)]),
                // overlay wants two lower layers when it has no upper.
                [only] => return Ok(vec![bind(path_str(&self.fs_dir(only))?, false)]),
                _ => {}
            }
        }
        let mut lowerdirs = Vec::with_capacity(lowers.len());
        for k in &lowers {
            self.ensure_link(k)?;
            lowerdirs.push(path_str(&self.link_path(k))?);
        }
        let mut options = self.overlay_opts.clone();
        if writable {
            options.push(format!("workdir={}", path_str(&self.snap_dir(key).join("work"))?));
            options.push(format!("upperdir={own_fs}"));
        }
        options.push(format!("lowerdir={}", lowerdirs.join(":")));
        Ok(vec![Mount { kind: "overlay".to_string(), source: "overlay".to_string(), options }])
    }

    /// Turns active snapshot `key` into committed snapshot `name`. The
    /// snapshot must not be mounted (its overlay workdir is removed).
    pub fn commit(&self, name: &str, key: &str) -> Result<()> {
        validate_key(name)?;
        validate_key(key)?;
        let mut index = self.lock();
        let meta = index.get(key).ok_or_else(|| Error::NotFound(key.to_string()))?;
        if meta.kind != SnapshotKind::Active {
            return Err(Error::WrongKind { key: key.to_string(), actual: meta.kind.as_str(), expected: "active" });
        }
        if index.contains_key(name) {
            return Err(Error::AlreadyExists(name.to_string()));
        }
        let committed = Meta {
            kind: SnapshotKind::Committed,
            key: name.to_string(),
            parent: meta.parent.clone(),
            diff_id: None,
            size: None,
        };
        let src = self.snap_dir(key);
        let dst = self.snap_dir(name);
        let pending = src.join("meta.commit");
        write_synced(&pending, committed.encode().as_bytes())?;
        if let Err(e) = fs::rename(&src, &dst) {
            let _ = fs::remove_file(&pending);
            return Err(io_err("rename", &dst)(e));
        }
        index.remove(key);
        index.insert(name.to_string(), committed);
        let pending = dst.join("meta.commit");
        let meta_path = dst.join("meta");
        // From here on the commit has happened; a crash is finished by `new`.
        fs::rename(&pending, &meta_path).map_err(io_err("rename", &meta_path))?;
        fsync_dir(&dst)?;
        fsync_dir(&self.snapshots)?;
        let work = dst.join("work");
        if work.exists() {
            remove_tree(&work)?;
        }
        self.ensure_link(name)
    }

    /// Removes snapshot `key` of any kind. A snapshot that is the parent of
    /// others is refused (Conflict), as containerd does.
    pub fn remove(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        let mut index = self.lock();
        let meta = index.get(key).ok_or_else(|| Error::NotFound(key.to_string()))?;
        let children = index.values().filter(|m| m.parent.as_deref() == Some(key)).count();
        if children > 0 {
            return Err(Error::HasChildren { key: key.to_string(), children });
        }
        let committed = meta.kind == SnapshotKind::Committed;
        // Rename out of the way first: the removal is then atomic, and a crash
        // while deleting leaves only `tmp/` garbage, emptied at next start.
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let trash = self.tmp.join(format!("remove-{}-{n}", std::process::id()));
        let src = self.snap_dir(key);
        fs::rename(&src, &trash).map_err(io_err("rename", &src))?;
        index.remove(key);
        if committed {
            let link = self.link_path(key);
            match fs::remove_file(&link) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(link = %link.display(), error = %e, "cannot remove link"),
            }
        }
        drop(index);
        fsync_dir(&self.snapshots)?;
        self.discard(&trash);
        Ok(())
    }

    /// Parent key of snapshot `key`.
    pub fn parent(&self, key: &str) -> Result<Option<String>> {
        self.lock().get(key).map(|m| m.parent.clone()).ok_or_else(|| Error::NotFound(key.to_string()))
    }

    /// Bytes used by the snapshot's own directory, not its parents: apparent
    /// sizes of non-directories, each inode once, as Docker's
    /// `directory.Size` (what `docker system df` and `SizeRw` report).
    pub fn usage(&self, key: &str) -> Result<u64> {
        let fs_dir = {
            let index = self.lock();
            if !index.contains_key(key) {
                return Err(Error::NotFound(key.to_string()));
            }
            self.fs_dir(key)
        };
        let mut seen = HashSet::new();
        let mut total = 0u64;
        let mut stack = vec![fs_dir];
        while let Some(dir) = stack.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                // Removed concurrently (a running container deleting files).
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read directory", &dir)(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io_err("read directory", &dir))?;
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err("lstat", &entry.path())(e)),
                };
                if meta.is_dir() {
                    stack.push(entry.path());
                } else if meta.len() > 0 && seen.insert((meta.dev(), meta.ino())) {
                    total += meta.len();
                }
            }
        }
        Ok(total)
    }

    /// Writes a Docker layer tar of the changes in snapshot `key` relative to
    /// its parents: its own directory, with overlay whiteouts and opaque
    /// directories converted to `.wh.` entries. Meant for active snapshots;
    /// for a committed one it reproduces its layer.
    pub fn diff(&self, key: &str, out: impl Write) -> Result<()> {
        let fs_dir = {
            let index = self.lock();
            if !index.contains_key(key) {
                return Err(Error::NotFound(key.to_string()));
            }
            self.fs_dir(key)
        };
        write_diff(&fs_dir, out)
    }
}

#[cfg(test)]
#[path = "snapshotter_tests.rs"]
mod tests;
