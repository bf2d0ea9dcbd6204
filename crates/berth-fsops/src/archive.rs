//! Tar writers: `GET /containers/{id}/archive` and `docker export`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::resolve::{go_base, has_trailing_dot_or_sep, resolve_in_root};
use crate::{io_ctx, xattr, Error, Result};

/// Tars container path `path` of `root` like Docker's `GET
/// /containers/{id}/archive?path=`: entries are named after the basename of
/// the path as the client wrote it (`TarWithOptions` with `RebaseNames`), so
/// `/etc/` yields `etc/`, `etc/passwd`, … and `/etc/.` yields `./`, `./passwd`.
/// The last component is only followed when `follow_link` is set or the path
/// ends in `/` or `/.` (Docker's `ResolvePath`).
pub fn archive_path<W: Write>(root: &Path, path: &str, follow_link: bool, out: W) -> Result<()> {
    let abs = format!("/{}", path.trim_start_matches('/'));
    let follow = follow_link || has_trailing_dot_or_sep(&abs);
    let host = resolve_in_root(root, &abs, follow)?;
    let meta = match fs::symlink_metadata(&host) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) => {
            return Err(Error::NotFound(format!("lstat {abs}: no such file or directory")))
        }
        Err(e) => return Err(io_ctx(format!("lstat {abs}"))(e)),
    };
    let base = go_base(&abs);
    let name = if base == "/" { ".".to_string() } else { base };
    let mut w = TarWriter::new(out, None);
    w.append_tree(&host, &meta, PathBuf::from(name))?;
    w.finish()
}

/// Tars a whole mounted rootfs for `docker export`: entry names are relative
/// (`bin/`, `etc/passwd`) and the root itself is not an entry, as Docker's
/// `TarWithOptions(basefs)` writes them. Directories on another filesystem
/// than `root` (bind mounts, `/proc`, volumes mounted into the rootfs) are
/// written as empty directories and not descended into; this is detected
/// by `st_dev` of directories, which overlayfs keeps constant across its
/// layers (non-directories may report a lower layer's device, so only
/// directories are compared).
pub fn export<W: Write>(root: &Path, out: W) -> Result<()> {
    let meta = fs::symlink_metadata(root).map_err(io_ctx(format!("lstat {}", root.display())))?;
    let mut w = TarWriter::new(out, Some(meta.dev()));
    w.append_children(root, Path::new(""))?;
    w.finish()
}

pub(crate) struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    /// First name written for each multiply-linked inode, to emit hardlinks.
    links: HashMap<(u64, u64), PathBuf>,
    /// When set, do not descend into directories of another device.
    root_dev: Option<u64>,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W, root_dev: Option<u64>) -> Self {
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Complete);
        b.follow_symlinks(false);
        Self { b, links: HashMap::new(), root_dev }
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        self.b.finish().map_err(io_ctx("write archive"))?;
        self.b.get_mut().flush().map_err(io_ctx("write archive"))
    }

    fn append_children(&mut self, dir: &Path, name: &Path) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .map_err(io_ctx(format!("read {}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        // Go's filepath.Walk order, so archives are reproducible.
        entries.sort();
        for n in entries {
            let host = dir.join(&n);
            let meta = match fs::symlink_metadata(&host) {
                Ok(m) => m,
                // Removed while we walk (a running container): skip as Docker does.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_ctx(format!("lstat {}", host.display()))(e)),
            };
            self.append_tree(&host, &meta, name.join(&n))?;
        }
        Ok(())
    }

    pub(crate) fn append_tree(&mut self, host: &Path, meta: &fs::Metadata, name: PathBuf) -> Result<()> {
        let ft = meta.file_type();
        if ft.is_socket() {
            // Docker's archiver skips sockets ("archive/tar: sockets not supported").
            return Ok(());
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        // Permission and set-id bits only, as Go's tar.FileInfoHeader writes
        // them (the type lives in the type flag).
        h.set_mode(meta.mode() & 0o7777);
        self.append_caps(host)?;
        let ctx = || format!("archive {}", host.display());
        if ft.is_dir() {
            h.set_size(0);
            let mut dname = name.clone().into_os_string();
            dname.push("/");
            self.append_named(&mut h, Path::new(&dname), None, io::empty()).map_err(io_ctx(ctx()))?;
            if let Some(dev) = self.root_dev {
                if meta.dev() != dev {
                    return Ok(());
                }
            }
            self.append_children(host, &name)
        } else if ft.is_symlink() {
            let target = fs::read_link(host).map_err(io_ctx(ctx()))?;
            h.set_size(0);
            self.append_named(&mut h, &name, Some(&target), io::empty()).map_err(io_ctx(ctx()))
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    return self.append_named(&mut h, &name, Some(&first), io::empty()).map_err(io_ctx(ctx()));
                }
                self.links.insert(key, name.clone());
            }
            let f = fs::File::open(host).map_err(io_ctx(ctx()))?;
            // A file growing while we read would corrupt the stream: send
            // exactly the size in the header.
            self.append_named(&mut h, &name, None, io::Read::take(f, meta.size())).map_err(io_ctx(ctx()))
        } else {
            // Devices and FIFOs: set_metadata filled type and major/minor.
            h.set_size(0);
            self.append_named(&mut h, &name, None, io::empty()).map_err(io_ctx(ctx()))
        }
    }

    /// Appends an entry under exactly `name`. The tar crate normalises
    /// names (`./sub` becomes `sub`), but Docker's archive of `dir/.` names
    /// its entries `./`, `./sub/`, … and docker-cli rebases on that `.`
    /// prefix (`RebaseArchiveEntries`), so such names are written as they
    /// are when they fit the header (longer ones fall back to the
    /// normalised form with a GNU long-name record).
    fn append_named<R: io::Read>(
        &mut self,
        h: &mut tar::Header,
        name: &Path,
        link: Option<&Path>,
        data: R,
    ) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let bytes = name.as_os_str().as_bytes();
        let link_fits = link.is_none_or(|l| l.as_os_str().as_bytes().len() <= 100);
        if bytes.starts_with(b"./") && bytes.len() <= 100 && link_fits {
            if let Some(l) = link {
                h.set_link_name(l)?;
            }
            let field = &mut h.as_old_mut().name;
            field.fill(0);
            field[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            return self.b.append(h, data);
        }
        match link {
            Some(l) => self.b.append_link(h, name, l),
            None => self.b.append_data(h, name, data),
        }
    }

    /// Docker carries exactly one xattr in its archives, `security.capability`
    /// (file capabilities, e.g. ping's `cap_net_raw`), as a PAX record.
    fn append_caps(&mut self, host: &Path) -> Result<()> {
        if let Ok(Some(v)) = xattr::get(host, b"security.capability") {
            self.b
                .append_pax_extensions([("SCHILY.xattr.security.capability", v.as_slice())])
                .map_err(io_ctx(format!("archive {}", host.display())))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (String::from_utf8_lossy(&e.path_bytes()).into_owned(), e.header().entry_type())
            })
            .collect()
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs::create_dir_all(r.join("etc/sub")).unwrap();
        fs::set_permissions(r.join("etc"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        fs::write(r.join("etc/a"), "aaa").unwrap();
        fs::hard_link(r.join("etc/a"), r.join("etc/sub/b")).unwrap();
        symlink("/etc/a", r.join("etc/l")).unwrap();
        symlink("/etc", r.join("link")).unwrap();
        d
    }

    #[test]
    fn archive_names_are_rebased_on_the_basename() {
        let d = tree();
        let mut out = Vec::new();
        archive_path(d.path(), "/etc", false, &mut out).unwrap();
        let n = names(&out);
        let expect = [
            ("etc/", tar::EntryType::Directory),
            ("etc/a", tar::EntryType::Regular),
            ("etc/l", tar::EntryType::Symlink),
            ("etc/sub/", tar::EntryType::Directory),
            ("etc/sub/b", tar::EntryType::Link),
        ];
        assert_eq!(n, expect.iter().map(|(a, b)| (a.to_string(), *b)).collect::<Vec<_>>());

        let mut a = tar::Archive::new(out.as_slice());
        let first = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(first.header().mode().unwrap(), 0o755);

        let mut out = Vec::new();
        archive_path(d.path(), "/etc/.", false, &mut out).unwrap();
        assert_eq!(names(&out)[0].0, "./");

        // Not followed: the link itself, named as the client named it.
        let mut out = Vec::new();
        archive_path(d.path(), "/link", false, &mut out).unwrap();
        assert_eq!(names(&out), vec![("link".to_string(), tar::EntryType::Symlink)]);
        // Followed (`cp -L`): the directory under the link's name.
        let mut out = Vec::new();
        archive_path(d.path(), "/link", true, &mut out).unwrap();
        assert_eq!(names(&out)[0].0, "link/");
        assert_eq!(
            archive_path(d.path(), "/nope", false, Vec::new()).unwrap_err().kind(),
            berth_error::ErrorKind::NotFound
        );
    }

    #[test]
    fn export_is_relative_and_complete() {
        let d = tree();
        let mut out = Vec::new();
        export(d.path(), &mut out).unwrap();
        let n: Vec<String> = names(&out).into_iter().map(|x| x.0).collect();
        assert_eq!(n, ["etc/", "etc/a", "etc/l", "etc/sub/", "etc/sub/b", "link"]);
    }
}
