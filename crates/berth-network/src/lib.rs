//! Networking (DESIGN.md §3 "networks"): bridge networks with IPAM recorded in
//! SQLite, a veth per container into a namespace the daemon made before the
//! runtime runs, outbound NAT and published ports through one nftables table
//! (`FirewallDriver`), network isolation, and an embedded DNS server on
//! user-defined networks. The container manager calls [`Networks::attach`]
//! before starting a container and [`Networks::detach`] when it ends.

pub mod dns;
pub mod firewall;
pub mod ipam;
mod manager;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod store;

use berth_error::ErrorKind;

pub use manager::{Attached, ContainerNet, NetworkConfig, Networks};
pub use store::{Endpoint, Network};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// Docker answers these with 403 (errdefs.Forbidden).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// A host port taken by someone else (Docker's portallocator error, 500).
    #[error("{0}")]
    PortAllocated(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Meta(#[from] berth_meta::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::Forbidden(_) => ErrorKind::Forbidden,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::PortAllocated(_) | Error::Internal(_) | Error::Io { .. } => ErrorKind::Internal,
            Error::Meta(e) => e.kind(),
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
