//! The runtime's error type. Messages follow runc's wording where callers are
//! known to match on them (containerd and Docker look for "does not exist",
//! "container not running" and "executable file not found").

use berth_error::ErrorKind;
use libcontainer::error::LibcontainerError;

/// Everything a runtime command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No state directory for the id (runc: `libcontainer.ErrNotExist`).
    #[error("container does not exist")]
    NotExist,
    /// `create` for an id that is already used (runc: `ErrExist`).
    #[error("container with given ID already exists")]
    Exists,
    /// A malformed id, signal, flag or bundle.
    #[error("{0}")]
    InvalidArgument(String),
    /// The container is in the wrong state for the operation, e.g. `start` of
    /// a running container or `delete` without `--force` of a running one.
    #[error("{0}")]
    IncorrectState(String),
    /// The user process could not be started (missing executable, exec
    /// failure). The text is runc's: `exec: "foo": executable file not found
    /// in $PATH`, which Docker turns into exit code 127.
    #[error("unable to start container process: {0}")]
    ProcessStart(String),
    /// A failure inside libcontainer, with what we were doing.
    #[error("{context}: {}", chain(.source))]
    Libcontainer {
        /// What the runtime was doing.
        context: String,
        /// The library's error.
        #[source]
        source: Box<LibcontainerError>,
    },
    /// A failure of the cgroup manager.
    #[error("{context}: {message}")]
    Cgroup {
        /// What the runtime was doing.
        context: String,
        /// The manager's error, flattened (its types are generic per version).
        message: String,
    },
    /// A file or syscall failure of the runtime itself.
    #[error("{context}: {source}")]
    Io {
        /// What the runtime was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The class of this error, for callers that map errors to statuses.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotExist => ErrorKind::NotFound,
            Error::Exists | Error::IncorrectState(_) => ErrorKind::Conflict,
            Error::InvalidArgument(_) | Error::ProcessStart(_) => ErrorKind::InvalidArgument,
            Error::Libcontainer { source, .. } => match source.as_ref() {
                LibcontainerError::Exist => ErrorKind::Conflict,
                LibcontainerError::IncorrectStatus(_) => ErrorKind::Conflict,
                LibcontainerError::NoDirectory => ErrorKind::NotFound,
                LibcontainerError::InvalidID(_)
                | LibcontainerError::InvalidInput(_)
                | LibcontainerError::MissingSpec(_)
                | LibcontainerError::InvalidSpec(_)
                | LibcontainerError::Spec(_) => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
            Error::Cgroup { .. } | Error::Io { .. } => ErrorKind::Internal,
        }
    }

    pub(crate) fn lib(context: impl Into<String>, source: LibcontainerError) -> Self {
        Error::Libcontainer { context: context.into(), source: Box::new(source) }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { context: context.into(), source }
    }

    pub(crate) fn cgroup(context: impl Into<String>, source: impl std::error::Error + 'static) -> Self {
        Error::Cgroup { context: context.into(), message: chain(&source) }
    }
}

/// Result alias for the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Joins an error and its sources with ": ", the way Go's `%w` wrapping reads
/// in runc's messages. libcontainer wraps heavily with `#[error(transparent)]`
/// and terse outer texts ("io error"), so only the full chain is useful; links
/// already contained in the text so far are skipped.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(Error::NotExist.kind(), ErrorKind::NotFound);
        assert_eq!(Error::Exists.kind(), ErrorKind::Conflict);
        assert_eq!(Error::ProcessStart("x".into()).kind(), ErrorKind::InvalidArgument);
        assert_eq!(Error::lib("x", LibcontainerError::Exist).kind(), ErrorKind::Conflict);
    }

    #[test]
    fn chain_joins_sources() {
        let e = Error::io("open config.json", std::io::Error::from_raw_os_error(libc::ENOENT));
        let s = chain(&e);
        assert!(s.starts_with("open config.json: No such file"), "{s}");
        assert_eq!(s.matches("No such file").count(), 1, "{s}");
    }

    #[test]
    fn process_start_text_matches_runc() {
        let e = Error::ProcessStart(r#"exec: "foo": executable file not found in $PATH"#.into());
        assert_eq!(
            e.to_string(),
            r#"unable to start container process: exec: "foo": executable file not found in $PATH"#
        );
    }
}
