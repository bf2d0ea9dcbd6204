//! Tree copy preserving ownership, modes, times, symlinks, hardlinks and
//! xattrs: Docker's volume copy-up (`copyExistingContents`) uses it to seed a
//! new named volume from the image.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::extract::set_times_ns;
use crate::resolve::os_bytes;
use crate::{io_ctx, is_root, xattr, Error, Result};

/// Copies the *contents* of directory `src` into existing directory `dst`.
/// Nothing is ever followed: symlinks are copied as symlinks (so a link in an
/// image pointing at `/etc` cannot pull host files in), and the walk only
/// descends into real directories. Sockets are skipped; device nodes are
/// copied only as root. Ownership is kept when running as root.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let mut c = Copier { links: HashMap::new(), dirs: Vec::new() };
    c.copy_children(src, dst)?;
    for (p, m) in c.dirs.iter().rev() {
        set_times_ns(p, m.mtime(), m.mtime_nsec())?;
    }
    Ok(())
}

struct Copier {
    links: HashMap<(u64, u64), PathBuf>,
    dirs: Vec<(PathBuf, fs::Metadata)>,
}

impl Copier {
    fn copy_children(&mut self, src: &Path, dst: &Path) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(src)
            .map_err(io_ctx(format!("read {}", src.display())))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for n in names {
            self.copy_one(&src.join(&n), &dst.join(&n))?;
        }
        Ok(())
    }

    fn copy_one(&mut self, s: &Path, d: &Path) -> Result<()> {
        let m = match fs::symlink_metadata(s) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_ctx(format!("lstat {}", s.display()))(e)),
        };
        let ft = m.file_type();
        let ctx = || format!("copy {} to {}", s.display(), d.display());
        if ft.is_dir() {
            fs::DirBuilder::new().mode(0o700).create(d).map_err(io_ctx(ctx()))?;
            self.copy_children(s, d)?;
        } else if ft.is_symlink() {
            let t = fs::read_link(s).map_err(io_ctx(ctx()))?;
            symlink(&t, d).map_err(io_ctx(ctx()))?;
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = self.links.get(&key) {
                    return fs::hard_link(first, d).map_err(io_ctx(ctx()));
                }
                self.links.insert(key, d.to_path_buf());
            }
            let mut from =
                fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(s).map_err(io_ctx(ctx()))?;
            let mut to =
                fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(d).map_err(io_ctx(ctx()))?;
            io::copy(&mut from, &mut to).map_err(io_ctx(ctx()))?;
        } else if ft.is_socket() {
            return Ok(());
        } else {
            if !ft.is_fifo() && !is_root() {
                return Ok(());
            }
            let c = std::ffi::CString::new(os_bytes(d))
                .map_err(|_| Error::InvalidArgument(format!("{}: NUL in path", d.display())))?;
            // SAFETY: c is a valid NUL-terminated path.
            if unsafe { libc::mknod(c.as_ptr(), m.mode() & libc::S_IFMT | 0o600, m.rdev()) } != 0 {
                return Err(io_ctx(ctx())(io::Error::last_os_error()));
            }
        }
        copy_meta(&m, d)?;
        xattr::copy_all(s, d).map_err(io_ctx(ctx()))?;
        if ft.is_dir() {
            self.dirs.push((d.to_path_buf(), m));
        } else {
            set_times_ns(d, m.mtime(), m.mtime_nsec())?;
        }
        Ok(())
    }
}

/// Owner then mode (chown clears setuid/setgid) of `m` onto `d`, which is
/// never followed if it is a symlink.
pub(crate) fn copy_meta(m: &fs::Metadata, d: &Path) -> Result<()> {
    let c = std::ffi::CString::new(os_bytes(d))
        .map_err(|_| Error::InvalidArgument(format!("{}: NUL in path", d.display())))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::lchown(c.as_ptr(), m.uid(), m.gid()) } != 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EPERM) || is_root() {
            return Err(io_ctx(format!("chown {}", d.display()))(e));
        }
    }
    if !m.file_type().is_symlink() {
        fs::set_permissions(d, fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(io_ctx(format!("chmod {}", d.display())))?;
    }
    Ok(())
}
