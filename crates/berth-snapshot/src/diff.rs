//! Writing a Docker layer tar from an overlay upper directory.
//!
//! Docker's overlay2 driver produces a layer by archiving the upper directory
//! with the overlay whiteout converter (`pkg/archive` `TarWithOptions` +
//! `overlayWhiteoutConverter.ConvertRead`); this does the same:
//!
//! * a 0/0 character device `<name>` becomes an empty regular file
//!   `.wh.<name>` (mode 0600, owner and mtime of the device);
//! * a directory with the opaque xattr (`trusted.overlay.opaque=y`, or
//!   `user.overlay.opaque=y` for `userxattr` mounts) is followed by an empty
//!   `<dir>/.wh..wh..opq` entry;
//! * everything else is archived as found, in lexical order, directories
//!   before their contents and with a trailing `/`, mtimes in whole seconds,
//!   empty user and group names, and only the `security.capability` xattr
//!   (Docker's `ReadSecurityXattrToTarHeader`), so output is reproducible;
//! * further names of a multiply-linked inode become hardlink entries;
//!   whiteouts are checked first because overlayfs (Linux 5.8+) shares one
//!   inode between whiteouts, which must not turn into hardlinks;
//! * sockets are skipped, as Docker does.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::error::{io_err, Result};
use crate::extract::{WHITEOUT_OPAQUE, WHITEOUT_PREFIX};

/// Xattrs that mark an opaque directory in an upper dir.
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Writes the layer tar of `upper` to `out`.
pub(crate) fn write_diff<W: Write>(upper: &Path, out: W) -> Result<()> {
    let mut writer = DiffWriter { upper, builder: tar::Builder::new(out), seen: HashMap::new() };
    // The root itself is not an entry (Docker skips "." unless asked), but an
    // opaque root still needs its marker.
    if is_opaque(upper) {
        let meta = fs::symlink_metadata(upper).map_err(io_err("lstat", upper))?;
        writer.append_opaque(Path::new(""), &meta)?;
    }
    // Depth-first in lexical order with an explicit stack: deep trees must not
    // exhaust the thread's stack.
    let mut stack: Vec<PathBuf> = sorted_children(upper, Path::new(""))?;
    stack.reverse();
    while let Some(rel) = stack.pop() {
        let path = upper.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(io_err("lstat", &path))?;
        if meta.is_dir() {
            writer.append_dir(&rel, &path, &meta)?;
            let mut children = sorted_children(upper, &rel)?;
            children.reverse();
            stack.extend(children);
        } else {
            writer.append_other(&rel, &path, &meta)?;
        }
    }
    writer
        .builder
        .into_inner()
        .map_err(io_err("write tar end of", upper))?
        .flush()
        .map_err(io_err("flush tar of", upper))
}

fn sorted_children(upper: &Path, rel: &Path) -> Result<Vec<PathBuf>> {
    let dir = upper.join(rel);
    let mut names: Vec<OsString> = fs::read_dir(&dir)
        .map_err(io_err("read directory", &dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_err("read directory", &dir))?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names.into_iter().map(|n| rel.join(n)).collect())
}

fn is_opaque(path: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| matches!(xattr::get(path, name), Ok(Some(v)) if v == b"y"))
}

struct DiffWriter<'a, W: Write> {
    upper: &'a Path,
    builder: tar::Builder<W>,
    /// (dev, ino) of multiply-linked files already written, to their tar name.
    seen: HashMap<(u64, u64), Vec<u8>>,
}

/// Reads exactly `remaining` bytes: a file that shrinks while it is archived
/// (a running container) must fail the diff, not yield a corrupt tar.
struct ExactReader {
    file: File,
    remaining: u64,
}

impl Read for ExactReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while it was being archived"));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

fn base_header(meta: &Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

impl<W: Write> DiffWriter<'_, W> {
    fn append_dir(&mut self, rel: &Path, path: &Path, meta: &Metadata) -> Result<()> {
        let mut name = rel.as_os_str().as_bytes().to_vec();
        name.push(b'/');
        let header = base_header(meta, EntryType::Directory);
        self.append(header, &name, None, &security_xattrs(path), io::empty())?;
        if is_opaque(path) {
            self.append_opaque(rel, meta)?;
        }
        Ok(())
    }

    fn append_opaque(&mut self, rel: &Path, dir_meta: &Metadata) -> Result<()> {
        // Docker's marker: a regular file with the directory's permission
        // bits and owner, zero mtime.
        let mut h = base_header(dir_meta, EntryType::Regular);
        h.set_mode(dir_meta.mode() & 0o777);
        h.set_mtime(0);
        let name = rel.join(WHITEOUT_OPAQUE);
        self.append(h, name.as_os_str().as_bytes(), None, &[], io::empty())
    }

    fn append_other(&mut self, rel: &Path, path: &Path, meta: &Metadata) -> Result<()> {
        let ft = meta.file_type();
        if ft.is_char_device() && meta.rdev() == 0 {
            let mut h = base_header(meta, EntryType::Regular);
            h.set_mode(0o600);
            let mut file_name = OsString::from(WHITEOUT_PREFIX);
            file_name.push(rel.file_name().unwrap_or_default());
            let name = rel.with_file_name(file_name);
            return self.append(h, name.as_os_str().as_bytes(), None, &[], io::empty());
        }
        if ft.is_socket() {
            tracing::debug!(path = %path.display(), "skipping socket in layer diff");
            return Ok(());
        }
        let name = rel.as_os_str().as_bytes();
        if meta.nlink() > 1 {
            let inode = (meta.dev(), meta.ino());
            if let Some(first) = self.seen.get(&inode).cloned() {
                let h = base_header(meta, EntryType::Link);
                return self.append(h, name, Some(&first), &[], io::empty());
            }
            self.seen.insert(inode, name.to_vec());
        }
        let xattrs = security_xattrs(path);
        if ft.is_file() {
            let mut h = base_header(meta, EntryType::Regular);
            h.set_size(meta.len());
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(io_err("open", path))?;
            let data = ExactReader { file, remaining: meta.len() };
            self.append(h, name, None, &xattrs, data)
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(io_err("readlink", path))?;
            let h = base_header(meta, EntryType::Symlink);
            self.append(h, name, Some(target.as_os_str().as_bytes()), &xattrs, io::empty())
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() { EntryType::Char } else { EntryType::Block };
            let mut h = base_header(meta, kind);
            let rdev = meta.rdev();
            let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
            h.set_device_major(u32::try_from(major).unwrap_or(0)).map_err(io_err("set device of", path))?;
            h.set_device_minor(u32::try_from(minor).unwrap_or(0)).map_err(io_err("set device of", path))?;
            self.append(h, name, None, &xattrs, io::empty())
        } else if ft.is_fifo() {
            let h = base_header(meta, EntryType::Fifo);
            self.append(h, name, None, &xattrs, io::empty())
        } else {
            tracing::debug!(path = %path.display(), "skipping unknown file type in layer diff");
            Ok(())
        }
    }

    /// Appends one entry, with PAX records for names that do not fit the
    /// ustar header and for xattrs (Go's archive/tar does the same).
    fn append<R: Read>(
        &mut self,
        mut header: Header,
        name: &[u8],
        link: Option<&[u8]>,
        xattrs: &[(String, Vec<u8>)],
        data: R,
    ) -> Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if header.set_path(Path::new(std::ffi::OsStr::from_bytes(name))).is_err() {
            pax.push(("path".into(), name.to_vec()));
            set_truncated(&mut header, name, false);
        }
        if let Some(link) = link {
            if header.set_link_name(Path::new(std::ffi::OsStr::from_bytes(link))).is_err() {
                pax.push(("linkpath".into(), link.to_vec()));
                set_truncated(&mut header, link, true);
            }
        }
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        let err = io_err("write tar entry for", self.upper);
        let res = (|| {
            if !pax.is_empty() {
                self.builder.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
            }
            header.set_cksum();
            self.builder.append(&header, data)
        })();
        res.map_err(err)
    }
}

/// Stores a truncated name or link name in the ustar header when the full
/// one goes into a PAX record.
fn set_truncated(header: &mut Header, value: &[u8], link: bool) {
    if let Some(ustar) = header.as_ustar_mut() {
        let field = if link { &mut ustar.linkname } else { &mut ustar.name };
        let n = value.len().min(field.len());
        field.fill(0);
        field[..n].copy_from_slice(&value[..n]);
        if !link {
            ustar.prefix.fill(0);
        }
    }
}

fn security_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    match xattr::get(path, "security.capability") {
        Ok(Some(v)) => vec![("security.capability".to_string(), v)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn entries(tar_bytes: &[u8]) -> Vec<(String, EntryType, Vec<u8>, Option<String>)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
                let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
                let kind = e.header().entry_type();
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("read");
                (name, kind, data, link)
            })
            .collect()
    }

    #[test]
    fn whiteouts_opaque_dirs_links_and_long_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = dir.path();
        fs::create_dir(up.join("etc")).expect("mkdir");
        fs::write(up.join("etc/hosts"), b"127.0.0.1 x\n").expect("write");
        fs::hard_link(up.join("etc/hosts"), up.join("etc/hosts2")).expect("link");
        symlink("/etc/hosts", up.join("hostlink")).expect("symlink");
        nix::sys::stat::mknod(&up.join("gone"), nix::sys::stat::SFlag::S_IFCHR, nix::sys::stat::Mode::empty(), 0)
            .expect("mknod whiteout (Linux >= 5.8 allows it unprivileged)");
        fs::create_dir(up.join("opaque")).expect("mkdir");
        xattr::set(up.join("opaque"), "user.overlay.opaque", b"y").expect("xattr");
        let long = "d".repeat(120);
        fs::create_dir(up.join(&long)).expect("mkdir");
        fs::write(up.join(&long).join("f".repeat(150)), b"x").expect("write");
        let long_target = format!("/{}", "t".repeat(200));
        symlink(&long_target, up.join("longlink")).expect("symlink");

        let mut out = Vec::new();
        write_diff(up, &mut out).expect("diff");
        let got = entries(&out);
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        let long_file = format!("{long}/{}", "f".repeat(150));
        let long_dir = format!("{long}/");
        assert_eq!(
            names,
            vec![
                long_dir.as_str(),
                long_file.as_str(),
                "etc/",
                "etc/hosts",
                "etc/hosts2",
                ".wh.gone",
                "hostlink",
                "longlink",
                "opaque/",
                "opaque/.wh..wh..opq",
            ]
        );
        let by_name = |n: &str| got.iter().find(|e| e.0 == n).expect(n);
        assert_eq!(by_name("etc/hosts").2, b"127.0.0.1 x\n");
        assert_eq!(by_name("etc/hosts2").1, EntryType::Link);
        assert_eq!(by_name("etc/hosts2").3.as_deref(), Some("etc/hosts"));
        assert_eq!(by_name(".wh.gone").1, EntryType::Regular);
        assert_eq!(by_name("hostlink").3.as_deref(), Some("/etc/hosts"));
        assert_eq!(by_name("longlink").3.as_deref(), Some(long_target.as_str()));
        assert_eq!(by_name("opaque/.wh..wh..opq").1, EntryType::Regular);
    }
}
