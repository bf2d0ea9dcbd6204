//! The one vocabulary every berth crate uses to say *what kind* of failure an
//! error is. Each crate keeps its own `thiserror` enum with a `kind()` method
//! returning one of these; only the API layer turns a kind into an HTTP status
//! (DESIGN.md §5: 404 no such object, 409 conflict, 400 bad parameter, …).

/// The class of an error, independent of the crate that raised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object does not exist (HTTP 404).
    NotFound,
    /// The request conflicts with the current state, e.g. a name in use (HTTP 409).
    Conflict,
    /// The caller sent something malformed (HTTP 400).
    InvalidArgument,
    /// The operation is valid but already in the requested state (HTTP 304).
    NotModified,
    /// The caller lacks the credentials for the operation (HTTP 401/403).
    Unauthorized,
    /// The operation is refused by policy, e.g. removing a predefined network (HTTP 403).
    Forbidden,
    /// The operation is not implemented or not supported here (HTTP 501).
    Unsupported,
    /// The data on disk or from a peer is corrupt (digest mismatch, truncated archive).
    DataLoss,
    /// Anything else: I/O failures, bugs (HTTP 500).
    Internal,
}

impl ErrorKind {
    /// A short stable name, handy in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::NotModified => "not modified",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::DataLoss => "data loss",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
