//! Filesystem operations inside a container root for `docker cp`, `diff` and
//! `export`.
//!
//! Every path a client names is a *container* path: it is resolved inside the
//! container's root directory, with absolute symlinks taken relative to that
//! root and `..` clamped at it. Getting this wrong is how Docker shipped
//! CVE-2018-15664 (a symlink swapped in during `docker cp` let the daemon
//! write to the host) and CVE-2019-14271 (`docker cp` loading code from the
//! container). [`resolve_in_root`] is the one place that resolves paths; the
//! other operations build on it.

mod archive;
mod changes;
mod copy;
mod extract;
mod resolve;
mod stat;
mod xattr;

use std::fmt::Display;
use std::io;

use berth_error::ErrorKind;

pub use archive::{archive_path, export};
pub use changes::{changes, Change, ChangeKind};
pub use copy::copy_tree;
pub use extract::{extract_to, extract_to_with, ExtractOptions};
pub use resolve::{resolve_in_root, resolve_in_root_userspace};
pub use stat::{go_file_mode, stat, PathStat};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path does not exist in the container (the daemon words Docker's
    /// `Could not find the file … in container …` around it).
    #[error("{0}")]
    NotFound(String),
    /// A malformed or hostile request: an archive entry escaping the
    /// destination, an extraction point that is not a directory, …
    #[error("{0}")]
    InvalidArgument(String),
    /// The request conflicts with what is on disk (`NoOverwriteDirNonDir`).
    #[error("{0}")]
    Conflict(String),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => ErrorKind::InvalidArgument,
                _ if source.raw_os_error() == Some(libc::ELOOP) => ErrorKind::InvalidArgument,
                _ if source.raw_os_error() == Some(libc::ENOTDIR) => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an I/O error with what was being done, for `map_err`.
pub(crate) fn io_ctx<C: Display>(context: C) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { context: context.to_string(), source }
}

/// Whether this process may chown, mknod and set `trusted.` xattrs.
pub(crate) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
