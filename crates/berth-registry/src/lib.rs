//! A Docker Registry HTTP API v2 (distribution) client: `pull` fetches a
//! manifest (picking a platform from manifest lists / OCI indexes), streams
//! the blobs into the content store verifying every digest, unpacks the
//! layers and registers the image; `push` uploads the blobs of a stored
//! image and puts its manifest.
//!
//! The client is blocking (ureq): the daemon runs it in `spawn_blocking`.
//! Authentication follows Docker: anonymous, basic, or the bearer token flow
//! announced by `WWW-Authenticate`, with tokens cached per scope.

mod client;
mod inspect;
mod manifest;
mod progress;
mod pull;
mod push;

pub use client::{Credentials, Registry, RegistryConfig};
pub use inspect::SearchResult;
pub use manifest::{
    Descriptor, ImageIndex, ImageManifest, Platform, MEDIA_DOCKER_CONFIG, MEDIA_DOCKER_FOREIGN_GZIP,
    MEDIA_DOCKER_LAYER_GZIP, MEDIA_DOCKER_LAYER_TAR, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_DOCKER_SCHEMA1,
    MEDIA_DOCKER_SCHEMA1_SIGNED, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST,
};
pub use progress::{LayerStatus, ProgressEvent};
pub use pull::{PullOptions, PulledImage};
pub use push::PushOptions;

use berth_error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad reference, an unsupported manifest (schema 1), a malformed manifest.
    #[error("{0}")]
    InvalidArgument(String),
    /// Docker's text for a repository the registry denies or does not know.
    #[error("pull access denied for {name}, repository does not exist or may require 'docker login': {cause}")]
    PullAccessDenied { name: String, cause: String },
    /// Docker's text for an unknown tag or digest.
    #[error("manifest for {reference} not found: {cause}")]
    ManifestUnknown { reference: String, cause: String },
    #[error("{0}")]
    NotFound(String),
    /// Credentials missing or refused.
    #[error("{0}")]
    Unauthorized(String),
    /// Content whose digest does not match what the manifest promised.
    #[error("{0}")]
    DataLoss(String),
    #[error("{0}")]
    Unsupported(String),
    /// Any other error response of the registry (`code: message` as Docker prints it).
    #[error("{0}")]
    Registry(String),
    /// Connection-level failure talking to `context`.
    #[error("{context}: {source}")]
    Http { context: String, source: Box<ureq::Error> },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Content(#[from] berth_content::Error),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::PullAccessDenied { .. } | Error::ManifestUnknown { .. } | Error::NotFound(_) => ErrorKind::NotFound,
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::DataLoss(_) => ErrorKind::DataLoss,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Registry(_) | Error::Http { .. } | Error::Io { .. } => ErrorKind::Internal,
            Error::Image(e) => e.kind(),
            Error::Content(e) => e.kind(),
        }
    }

    pub(crate) fn http(context: impl Into<String>) -> impl FnOnce(ureq::Error) -> Error {
        let context = context.into();
        move |source| Error::Http { context, source: Box::new(source) }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
