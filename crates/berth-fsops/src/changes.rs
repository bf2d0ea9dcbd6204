//! `docker diff` from an overlayfs upper directory, following Docker's
//! `archive.OverlayChanges` (pkg/archive/changes.go).

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::{io_ctx, xattr, Result};

/// Docker's change kinds; the numbers are the API's `Kind` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

impl ChangeKind {
    /// The letter `docker diff` prints.
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One entry of `GET /containers/{id}/changes`: `{"Path": "/etc", "Kind": 0}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    #[serde(rename = "Path")]
    pub path: String,
    #[serde(rename = "Kind", serialize_with = "ser_kind")]
    pub kind: ChangeKind,
}

fn ser_kind<S: serde::Serializer>(k: &ChangeKind, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u8(*k as u8)
}

/// Overlay's opaque-directory markers: `trusted.` as root, `user.` when the
/// overlay was mounted with `userxattr` (rootless).
const OPAQUE_XATTRS: [&[u8]; 2] = [b"trusted.overlay.opaque", b"user.overlay.opaque"];

fn is_opaque(p: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|n| matches!(xattr::get(p, n), Ok(Some(v)) if v == b"y"))
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// Computes the changes an overlay upper directory makes to its lower
/// directories (`lower_dirs`, any order; a path present in any of them
/// counts as existing before):
/// - a 0/0 character device is a deletion;
/// - a path present in a lower is Modified, else Added; a directory present
///   in a lower with the same size, mode and mtime is not a change by itself
///   (overlay copied it up only because something below changed);
/// - an opaque directory hides its lower contents: each lower entry not in
///   the upper is reported Deleted;
/// - the parent of every Added or Deleted path is reported Modified if it is
///   not already (`C /etc` then `A /etc/x`), as Docker does (moby#13590).
///
/// Results are sorted by path, component by component (Docker's walk order).
pub fn changes(upper: &Path, lower_dirs: &[&Path]) -> Result<Vec<Change>> {
    let mut w = Walk { lowers: lower_dirs, out: Vec::new(), changed_dirs: HashSet::new() };
    w.walk(upper, Path::new("/"))?;
    let mut out = w.out;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out.into_iter().map(Change::from).collect())
}

struct Walk<'a> {
    lowers: &'a [&'a Path],
    out: Vec<(PathBuf, ChangeKind)>,
    changed_dirs: HashSet<PathBuf>,
}

impl Walk<'_> {
    fn in_lower(&self, rel: &Path) -> Option<fs::Metadata> {
        let r = rel.strip_prefix("/").unwrap_or(rel);
        self.lowers.iter().find_map(|l| fs::symlink_metadata(l.join(r)).ok())
    }

    fn record(&mut self, path: PathBuf, kind: ChangeKind) {
        if kind != ChangeKind::Modified {
            if let Some(parent) = path.parent() {
                if parent != Path::new("/") && self.changed_dirs.insert(parent.to_path_buf()) {
                    self.out.push((parent.to_path_buf(), ChangeKind::Modified));
                }
            }
        }
        self.out.push((path, kind));
    }

    fn walk(&mut self, dir: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(io_ctx(format!("read {}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in &names {
            let host = dir.join(n);
            let crel = rel.join(n);
            let m = match fs::symlink_metadata(&host) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_ctx(format!("lstat {}", host.display()))(e)),
            };
            if is_whiteout(&m) {
                self.record(crel, ChangeKind::Deleted);
                continue;
            }
            let lower = self.in_lower(&crel);
            let kind = match &lower {
                None => Some(ChangeKind::Added),
                Some(l) if l.is_dir() && m.is_dir() && !is_opaque(&host) => {
                    let same = l.size() == m.size()
                        && l.mode() == m.mode()
                        && l.mtime() == m.mtime()
                        && l.mtime_nsec() == m.mtime_nsec();
                    (!same).then_some(ChangeKind::Modified)
                }
                Some(_) => Some(ChangeKind::Modified),
            };
            if m.is_dir() {
                if let Some(k) = kind {
                    self.changed_dirs.insert(crel.clone());
                    self.record(crel.clone(), k);
                }
                if lower.as_ref().is_some_and(|l| l.is_dir()) && is_opaque(&host) {
                    self.opaque_deletions(&crel, &names_of(&host)?)?;
                }
                self.walk(&host, &crel)?;
            } else if let Some(k) = kind {
                self.record(crel, k);
            }
        }
        Ok(())
    }

    /// Every entry of the merged lowers of opaque directory `rel` that the
    /// upper does not have is gone from the container's view.
    fn opaque_deletions(&mut self, rel: &Path, upper_names: &HashSet<std::ffi::OsString>) -> Result<()> {
        let r = rel.strip_prefix("/").unwrap_or(rel);
        let mut gone = HashSet::new();
        for l in self.lowers {
            if let Ok(rd) = fs::read_dir(l.join(r)) {
                for e in rd.flatten() {
                    let n = e.file_name();
                    if !upper_names.contains(&n) {
                        gone.insert(n);
                    }
                }
            }
        }
        let mut gone: Vec<_> = gone.into_iter().collect();
        gone.sort();
        for n in gone {
            self.record(rel.join(n), ChangeKind::Deleted);
        }
        Ok(())
    }
}

fn names_of(dir: &Path) -> Result<HashSet<std::ffi::OsString>> {
    Ok(fs::read_dir(dir)
        .map_err(io_ctx(format!("read {}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect())
}

impl From<(PathBuf, ChangeKind)> for Change {
    fn from((p, kind): (PathBuf, ChangeKind)) -> Self {
        Change { path: p.to_string_lossy().into_owned(), kind }
    }
}
