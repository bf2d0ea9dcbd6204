//! Images: references, the image store (metadata in SQLite, configs and
//! layer blobs in the content store, unpacked layers in the snapshotter), and
//! the archive formats images travel in (`docker save`/`load`, `import`).

pub mod archive;
pub mod changes;
pub mod commit;
pub mod config;
pub mod reference;
pub mod store;

use berth_error::ErrorKind;

pub use reference::Reference;
pub use store::{DeleteItem, Image, ImageStore, LayerInfo};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidReference(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidArchive(String),
    #[error(transparent)]
    Content(#[from] berth_content::Error),
    #[error(transparent)]
    Snapshot(#[from] berth_snapshot::Error),
    #[error(transparent)]
    Meta(#[from] berth_meta::Error),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("invalid JSON in {context}: {source}")]
    Json { context: String, source: serde_json::Error },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference(_) | Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NoSuchImage(_) => ErrorKind::NotFound,
            Error::Conflict(_) => ErrorKind::Conflict,
            Error::InvalidArchive(_) | Error::Json { .. } => ErrorKind::InvalidArgument,
            Error::Content(e) => e.kind(),
            Error::Snapshot(e) => e.kind(),
            Error::Meta(e) => e.kind(),
            Error::Io { .. } => ErrorKind::Internal,
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
