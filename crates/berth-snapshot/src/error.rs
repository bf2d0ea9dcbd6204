//! Errors of the snapshotter, each mapped to a [`berth_error::ErrorKind`].

use std::io;
use std::path::{Path, PathBuf};

use berth_error::ErrorKind;

/// Errors of the snapshotter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A key, name or digest argument is malformed.
    #[error("invalid argument {value:?}: {reason}")]
    InvalidArgument { value: String, reason: String },
    /// No snapshot with that key.
    #[error("snapshot {0} does not exist")]
    NotFound(String),
    /// A snapshot with that key already exists.
    #[error("snapshot {0} already exists")]
    AlreadyExists(String),
    /// The snapshot exists but is of the wrong kind for the operation
    /// (for example committing a committed snapshot, or using an active one as a parent).
    #[error("snapshot {key} is {actual}, the operation needs a {expected} snapshot")]
    WrongKind { key: String, actual: &'static str, expected: &'static str },
    /// The snapshot is the parent of other snapshots and cannot be removed.
    #[error("cannot remove snapshot {key}: it is the parent of {children} other snapshot(s)")]
    HasChildren { key: String, children: usize },
    /// A layer entry would write outside the layer root or is otherwise unsafe.
    #[error("refusing layer entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    /// The layer stream is not a valid tar (bad checksum, truncated, short file data).
    #[error("corrupt or truncated layer tar{}: {source}", at_entry(.entry))]
    Corrupt { entry: Option<String>, source: io::Error },
    /// The uncompressed layer did not hash to the expected diff ID.
    #[error("layer diff ID mismatch: expected {expected}, got {actual}")]
    DiffIdMismatch { expected: String, actual: String },
    /// On-disk metadata of a snapshot cannot be parsed.
    #[error("snapshot metadata {path} is corrupt: {reason}")]
    BadMetadata { path: PathBuf, reason: String },
    /// A [`crate::Mount`] cannot be mounted as described.
    #[error("invalid mount {0}")]
    InvalidMount(String),
    /// A filesystem or system call failed.
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: io::Error },
}

fn at_entry(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" at entry {e:?}"),
        None => String::new(),
    }
}

impl Error {
    /// The class of this error, for the API layer's status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. }
            | Error::WrongKind { .. }
            | Error::UnsafeEntry { .. }
            | Error::InvalidMount(_) => ErrorKind::InvalidArgument,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::AlreadyExists(_) | Error::HasChildren { .. } => ErrorKind::Conflict,
            Error::Corrupt { .. } | Error::DiffIdMismatch { .. } | Error::BadMetadata { .. } => ErrorKind::DataLoss,
            Error::Io { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(value: &str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument { value: value.to_string(), reason: reason.into() }
    }

    pub(crate) fn unsafe_entry(entry: &[u8], reason: impl Into<String>) -> Self {
        Error::UnsafeEntry { entry: String::from_utf8_lossy(entry).into_owned(), reason: reason.into() }
    }

    pub(crate) fn corrupt(entry: Option<&[u8]>, source: io::Error) -> Self {
        Error::Corrupt { entry: entry.map(|e| String::from_utf8_lossy(e).into_owned()), source }
    }
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Builds a closure mapping an `io::Error` to [`Error::Io`] for `op` on `path`.
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io { op, path: path.to_path_buf(), source }
}

/// Same as [`io_err`] for `nix` errors.
pub(crate) fn nix_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(nix::Error) -> Error + 'a {
    move |errno| Error::Io { op, path: path.to_path_buf(), source: io::Error::from(errno) }
}
