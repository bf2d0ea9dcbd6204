//! On-disk layout, per-snapshot metadata files and small filesystem helpers.
//!
//! ```text
//! <root>/
//!   snapshots/<sha256-hex of key>/   one directory per snapshot (committed, active or view)
//!     meta                           kind, key, parent key, diff ID and size (text, one field a line)
//!     fs/                            the layer contents (overlay upperdir or lowerdir)
//!     work/                          overlay workdir, active snapshots with a parent only
//!   l/<26 chars>  -> ../snapshots/<hex>/fs   short link, as Docker's overlay2 `l/` directory
//!   tmp/                             extraction and removal scratch space, emptied at start
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::error::{io_err, nix_err, Error, Result};

/// Version written into every metadata file; bump when the format changes.
const META_VERSION: &str = "1";

/// What a snapshot is, as in containerd's snapshotter model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotKind {
    /// Read-only, may be a parent.
    Committed,
    /// Writable, created by `prepare`; becomes committed through `commit`.
    Active,
    /// Read-only view created by `view`; cannot be committed.
    View,
}

impl SnapshotKind {
    /// The name used in metadata files and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotKind::Committed => "committed",
            SnapshotKind::Active => "active",
            SnapshotKind::View => "view",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "committed" => Some(SnapshotKind::Committed),
            "active" => Some(SnapshotKind::Active),
            "view" => Some(SnapshotKind::View),
            _ => None,
        }
    }
}

/// The metadata of one snapshot, as recorded in its `meta` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub kind: SnapshotKind,
    pub key: String,
    pub parent: Option<String>,
    /// Diff ID of the tar the snapshot was unpacked from (apply_layer only).
    pub diff_id: Option<String>,
    /// Bytes of file data unpacked (apply_layer only).
    pub size: Option<u64>,
}

impl Meta {
    pub fn encode(&self) -> String {
        let mut s = format!("version {META_VERSION}\nkind {}\nkey {}\n", self.kind.as_str(), self.key);
        if let Some(p) = &self.parent {
            s.push_str(&format!("parent {p}\n"));
        }
        if let Some(d) = &self.diff_id {
            s.push_str(&format!("diff_id {d}\n"));
        }
        if let Some(n) = self.size {
            s.push_str(&format!("size {n}\n"));
        }
        s
    }

    pub fn decode(path: &Path, text: &str) -> Result<Self> {
        let bad = |reason: String| Error::BadMetadata { path: path.to_path_buf(), reason };
        let (mut kind, mut key, mut parent, mut diff_id, mut size) = (None, None, None, None, None);
        for line in text.lines() {
            let Some((field, value)) = line.split_once(' ') else {
                return Err(bad(format!("malformed line {line:?}")));
            };
            match field {
                "version" if value == META_VERSION => {}
                "version" => return Err(bad(format!("unknown version {value:?}"))),
                "kind" => {
                    kind = Some(SnapshotKind::parse(value).ok_or_else(|| bad(format!("unknown kind {value:?}")))?)
                }
                "key" => key = Some(value.to_string()),
                "parent" => parent = Some(value.to_string()),
                "diff_id" => diff_id = Some(value.to_string()),
                "size" => size = Some(value.parse::<u64>().map_err(|_| bad(format!("bad size {value:?}")))?),
                // Unknown fields are kept forward-compatible: ignore them.
                _ => {}
            }
        }
        Ok(Meta {
            kind: kind.ok_or_else(|| bad("missing kind".into()))?,
            key: key.ok_or_else(|| bad("missing key".into()))?,
            parent,
            diff_id,
            size,
        })
    }

    pub fn read(path: &Path) -> Result<Self> {
        let text = fs::read_to_string(path).map_err(io_err("read", path))?;
        Meta::decode(path, &text)
    }
}

/// Directory name of the snapshot with `key`: the hex sha256 of the key, so any
/// string (a chain ID, a container ID, a build step name) maps to a safe name.
pub(crate) fn dir_name(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Short link id of the snapshot with `key`: 26 base32 characters, the length
/// Docker's overlay2 driver uses for its `l/` links so that lowerdir strings of
/// deep images stay under the one-page limit of mount(2) data. Derived from the
/// key (not random) so that concurrent appliers of one key agree on it.
pub(crate) fn link_id(key: &str) -> String {
    let digest = Sha256::digest(format!("link:{key}").as_bytes());
    base32(&digest[..16])
}

/// RFC 4648 base32 without padding (16 bytes -> 26 characters).
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Checks a snapshot key or name. Keys are free-form (containerd allows any
/// string) but end up in line-oriented metadata files, so line breaks and NUL
/// are refused.
pub(crate) fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(key, "snapshot key must not be empty"));
    }
    if key.len() > 4096 {
        return Err(Error::invalid(key, "snapshot key is longer than 4096 bytes"));
    }
    if key.contains(['\n', '\r', '\0']) {
        return Err(Error::invalid(key, "snapshot key must not contain line breaks or NUL"));
    }
    Ok(())
}

/// Checks a diff ID argument (`sha256:` and 64 lowercase hex digits).
pub(crate) fn validate_diff_id(diff_id: &str) -> Result<()> {
    let ok = diff_id
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(diff_id, "expected a diff ID of the form sha256:<64 hex digits>"))
    }
}

/// Creates a directory with an exact mode (independent of the umask).
pub(crate) fn mkdir_mode(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new().mode(mode).create(path).map_err(io_err("create directory", path))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", path))
}

/// Writes a small file and fsyncs it.
pub(crate) fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create", path))?;
    f.write_all(data).map_err(io_err("write", path))?;
    f.sync_all().map_err(io_err("fsync", path))
}

/// fsyncs a directory so that renames and creations inside it are durable.
pub(crate) fn fsync_dir(path: &Path) -> Result<()> {
    File::open(path).and_then(|d| d.sync_all()).map_err(io_err("fsync directory", path))
}

/// Flushes the whole filesystem holding `path`. One syncfs(2) after unpacking a
/// layer is far cheaper than an fsync per file and gives the same guarantee
/// before the rename that publishes the layer (containerd and Docker publish
/// layers by rename too; a crash before the sync leaves only a temp dir).
pub(crate) fn syncfs(path: &Path) -> Result<()> {
    let dir = File::open(path).map_err(io_err("open", path))?;
    nix::unistd::syncfs(dir.as_raw_fd()).map_err(nix_err("syncfs", path))
}

/// Removes a directory tree without following symlinks. When not root, trees
/// unpacked from layers can hold directories without write permission (mode
/// 0555 is common in images), so on EACCES the owner bits are opened up and the
/// removal retried.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path);
            match fs::remove_dir_all(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", path)(e)),
                _ => Ok(()),
            }
        }
        Err(e) => Err(io_err("remove", path)(e)),
    }
}

fn make_writable(path: &Path) {
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.permissions().mode() | 0o700;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(mode));
        if let Ok(entries) = fs::read_dir(&dir) {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_roundtrip() {
        let m = Meta {
            kind: SnapshotKind::Committed,
            key: "sha256:abc def".into(),
            parent: Some("p".into()),
            diff_id: Some("sha256:00".into()),
            size: Some(42),
        };
        let back = Meta::decode(Path::new("x"), &m.encode()).expect("decode");
        assert_eq!(back, m);
        assert!(Meta::decode(Path::new("x"), "kind what\nkey k\n").is_err());
        assert!(Meta::decode(Path::new("x"), "key k\n").is_err());
    }

    #[test]
    fn link_ids_are_short_and_stable() {
        let a = link_id("sha256:1");
        assert_eq!(a.len(), 26);
        assert_eq!(a, link_id("sha256:1"));
        assert_ne!(a, link_id("sha256:2"));
        assert!(a.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn key_validation() {
        assert!(validate_key("").is_err());
        assert!(validate_key("a\nb").is_err());
        assert!(validate_key("sha256:abc").is_ok());
        assert!(validate_diff_id("sha256:abc").is_err());
        assert!(validate_diff_id(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(validate_diff_id(&format!("sha256:{}", "A".repeat(64))).is_err());
    }
}
