//! The shim crate's error type.

use berth_error::ErrorKind;

/// Errors of the shim, its client and `spawn`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call or file operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The caller passed something malformed (a flag, an id, a request).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The peer spoke something other than the shim protocol.
    #[error("shim protocol error: {0}")]
    Protocol(String),
    /// The OCI runtime failed; the text is the runtime's own error message
    /// (for runc, e.g. `exec: "foo": executable file not found in $PATH`).
    #[error("{0}")]
    Runtime(String),
    /// The shim answered a request with an error.
    #[error("{message}")]
    Remote { kind: ErrorKind, message: String },
    /// No such exec (or other named object) in this shim.
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the container's state (e.g. attach to an exited container).
    #[error("{0}")]
    Conflict(String),
    /// The shim did not report within the allowed time.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl Error {
    /// The class of the failure, for the API layer's status mapping.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Io { .. } | Error::Protocol(_) | Error::Timeout(_) => ErrorKind::Internal,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::Runtime(msg) => crate::protocol::classify_start_error(msg).1,
            Error::Remote { kind, .. } => *kind,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub(crate) fn errno(context: impl Into<String>, errno: nix::errno::Errno) -> Self {
        Error::Io { context: context.into(), source: std::io::Error::from(errno) }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
