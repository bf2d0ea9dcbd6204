//! `HEAD /containers/{id}/archive`: the stat of a container path, sent by
//! Docker in the `X-Docker-Container-Path-Stat` header as base64 of the JSON
//! of Go's `types.ContainerPathStat`.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::resolve::{clean_rel, go_base, has_trailing_dot_or_sep, resolve_in_root};
use crate::{io_ctx, Error, Result};

// Go's os.FileMode type bits (io/fs).
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_NAMED_PIPE: u32 = 1 << 25;
const MODE_SOCKET: u32 = 1 << 24;
const MODE_SETUID: u32 = 1 << 23;
const MODE_SETGID: u32 = 1 << 22;
const MODE_CHAR_DEVICE: u32 = 1 << 21;
const MODE_STICKY: u32 = 1 << 20;

/// Go's `os.FileMode` for a Unix stat, as `fs.FileMode` builds it in
/// `fillFileStatFromSys`.
pub fn go_file_mode(meta: &fs::Metadata) -> u32 {
    let m = meta.mode();
    let ft = meta.file_type();
    let mut out = m & 0o777;
    if ft.is_dir() {
        out |= MODE_DIR;
    } else if ft.is_symlink() {
        out |= MODE_SYMLINK;
    } else if ft.is_block_device() {
        out |= MODE_DEVICE;
    } else if ft.is_char_device() {
        out |= MODE_DEVICE | MODE_CHAR_DEVICE;
    } else if ft.is_fifo() {
        out |= MODE_NAMED_PIPE;
    } else if ft.is_socket() {
        out |= MODE_SOCKET;
    }
    if m & libc::S_ISUID != 0 {
        out |= MODE_SETUID;
    }
    if m & libc::S_ISGID != 0 {
        out |= MODE_SETGID;
    }
    if m & libc::S_ISVTX != 0 {
        out |= MODE_STICKY;
    }
    out
}

/// Go's `types.ContainerPathStat`; field order and names are the wire format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    #[serde(serialize_with = "ser_go_time")]
    pub mtime: DateTime<Utc>,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// The value of Docker's `X-Docker-Container-Path-Stat` header.
    pub fn header_value(&self) -> Result<String> {
        let json = serde_json::to_vec(self).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(json))
    }
}

/// Go's `time.Time` JSON form (RFC 3339 with nanoseconds, trailing zeros
/// trimmed, `Z` for UTC).
pub(crate) fn go_time(t: &DateTime<Utc>) -> String {
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let ns = t.timestamp_subsec_nanos();
    if ns > 0 {
        let frac = format!("{ns:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

fn ser_go_time<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&go_time(t))
}

pub(crate) fn mtime_of(meta: &fs::Metadata) -> DateTime<Utc> {
    DateTime::from_timestamp(meta.mtime(), meta.mtime_nsec().clamp(0, 999_999_999) as u32).unwrap_or_default()
}

/// Stats container path `path` inside `root` as Docker's
/// `container.StatPath` does: the last component is not followed (unless the
/// path ends in `/` or `/.`), and for a symlink `linkTarget` is the fully
/// resolved container path.
pub fn stat(root: &Path, path: &str) -> Result<PathStat> {
    let abs = format!("/{}", path.trim_start_matches('/'));
    let follow = has_trailing_dot_or_sep(&abs);
    let host = resolve_in_root(root, &abs, follow)?;
    let meta = match fs::symlink_metadata(&host) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(Error::NotFound(format!("lstat {abs}: no such file or directory")))
        }
        Err(e) => return Err(io_ctx(format!("lstat {abs}"))(e)),
    };
    let link_target = if meta.file_type().is_symlink() {
        let full = resolve_in_root(root, &abs, true)?;
        let rel = full.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| clean_rel(&abs));
        format!("/{}", rel.display())
    } else {
        String::new()
    };
    Ok(PathStat {
        name: go_base(&abs),
        size: meta.size() as i64,
        mode: go_file_mode(&meta),
        mtime: mtime_of(&meta),
        link_target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn header_matches_docker_format() {
        let st = PathStat {
            name: "passwd".into(),
            size: 1234,
            mode: 0o644,
            mtime: DateTime::from_timestamp(1_700_000_000, 120_000_000).unwrap(),
            link_target: String::new(),
        };
        let json = r#"{"name":"passwd","size":1234,"mode":420,"mtime":"2023-11-14T22:13:20.12Z","linkTarget":""}"#;
        assert_eq!(serde_json::to_string(&st).unwrap(), json);
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        assert_eq!(st.header_value().unwrap(), b64);
        let whole = PathStat { mtime: DateTime::from_timestamp(1_700_000_000, 0).unwrap(), ..st };
        assert!(serde_json::to_string(&whole).unwrap().contains(r#""mtime":"2023-11-14T22:13:20Z""#));
    }

    #[test]
    fn stat_dirs_files_and_links() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc")).unwrap();
        fs::write(r.join("etc/hosts"), "127.0.0.1 localhost\n").unwrap();
        fs::set_permissions(r.join("etc/hosts"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("/etc/hosts", r.join("h")).unwrap();
        let s = stat(r, "/etc/hosts").unwrap();
        assert_eq!(s.name, "hosts");
        assert_eq!(s.size, 20);
        assert_eq!(s.mode, 0o755 | MODE_SETUID);
        assert_eq!(s.link_target, "");
        let dir = stat(r, "etc/").unwrap();
        assert_eq!(dir.name, "etc");
        assert_eq!(dir.mode & MODE_DIR, MODE_DIR);
        let l = stat(r, "/h").unwrap();
        assert_eq!(l.name, "h");
        assert_eq!(l.mode & MODE_SYMLINK, MODE_SYMLINK);
        assert_eq!(l.link_target, "/etc/hosts");
        let e = stat(r, "/nope").unwrap_err();
        assert_eq!(e.kind(), berth_error::ErrorKind::NotFound);
    }
}
