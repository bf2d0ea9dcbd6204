//! Minimal `l*xattr` wrappers (never following symlinks: a symlink in an
//! untrusted tree must not make us read or write its target's attributes).

use std::ffi::CString;
use std::io;
use std::path::Path;

use crate::resolve::os_bytes;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(os_bytes(p)).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Names of the extended attributes of `p`; empty where unsupported.
pub(crate) fn list(p: &Path) -> io::Result<Vec<Vec<u8>>> {
    let c = cpath(p)?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf.split(|b| *b == 0).filter(|s| !s.is_empty()).map(<[u8]>::to_vec).collect());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(e),
        }
    }
}

/// The value of attribute `name` of `p`, `None` when absent or unsupported.
pub(crate) fn get(p: &Path, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
    let c = cpath(p)?;
    let n = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if r >= 0 {
            buf.truncate(r as usize);
            return Ok(Some(buf));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < (1 << 20) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => return Ok(None),
            _ => return Err(e),
        }
    }
}

pub(crate) fn set(p: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let c = cpath(p)?;
    let n = CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: all pointers are valid for the given lengths.
    let r = unsafe { libc::lsetxattr(c.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies every attribute we can from `src` to `dst`; attributes the target
/// filesystem or our privileges refuse (ENOTSUP, EPERM for `trusted.`) are
/// skipped, as Docker's copy-up does.
pub(crate) fn copy_all(src: &Path, dst: &Path) -> io::Result<()> {
    for name in list(src)? {
        if let Some(v) = get(src, &name)? {
            if let Err(e) = set(dst, &name, &v) {
                match e.raw_os_error() {
                    Some(libc::ENOTSUP) | Some(libc::EPERM) | Some(libc::EACCES) => {}
                    _ => return Err(e),
                }
            }
        }
    }
    Ok(())
}
