//! Containers: the record and state machine of each container, the OCI
//! bundle it runs from, and its life through the shim (DESIGN.md §2): create,
//! start, attach, exec, stop, kill, wait, remove, restart policies, logs, and
//! recovery of running containers after a daemon restart.

pub mod config;
pub mod logs;
mod manager;
pub mod model;
pub mod mounts;
mod netns;
pub mod spec;
mod store;

use berth_error::ErrorKind;

pub use berth_volume as volume;
pub use manager::task::{TaskNetwork, TaskOutput, TaskSpec};
pub use manager::{
    parse_signal, AttachOptions, CreateResult, ExecConfig, ExecInfo, Manager, ManagerConfig, WaitCondition,
};
pub use model::{Container, State, Status};
pub use mounts::MountPoint;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotModified(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Meta(#[from] berth_meta::Error),
    #[error(transparent)]
    Snapshot(#[from] berth_snapshot::Error),
    #[error(transparent)]
    Shim(#[from] berth_shim::Error),
    #[error(transparent)]
    Network(#[from] berth_network::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotModified(_) => ErrorKind::NotModified,
            Error::Internal(_) | Error::Io { .. } => ErrorKind::Internal,
            Error::Image(e) => e.kind(),
            Error::Meta(e) => e.kind(),
            Error::Snapshot(e) => e.kind(),
            Error::Shim(e) => e.kind(),
            Error::Network(e) => e.kind(),
        }
    }
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

impl From<berth_meta::rusqlite::Error> for Error {
    fn from(e: berth_meta::rusqlite::Error) -> Self {
        Error::Meta(berth_meta::Error::Sqlite(e))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
