//! The berth snapshotter: image layers unpacked once into directories keyed by
//! chain ID, in overlayfs form, and containerd-style `prepare`/`view`/`commit`
//! that *return* mounts and never mount anything themselves.
//!
//! * [`Snapshotter::apply_layer`] unpacks an uncompressed Docker layer tar,
//!   hashing it on the way, into a committed snapshot (whiteouts converted to
//!   overlay form, hostile paths refused; see the `extract` module).
//! * [`Snapshotter::prepare`] / [`Snapshotter::view`] create a writable or
//!   read-only snapshot on top of a committed parent chain and return the
//!   [`Mount`]s that assemble it; [`mount_all`] and [`unmount`] carry them out.
//! * [`Snapshotter::diff`] writes the Docker layer tar of a writable
//!   snapshot's changes, for `commit` and the builder.
//!
//! Everything is synchronous; the daemon calls it from `spawn_blocking`.

mod diff;
mod error;
mod extract;
mod mount;
mod snapshotter;
mod store;

pub use error::{Error, Result};
pub use extract::{WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX};
pub use mount::{mount_all, unmount, Mount};
pub use snapshotter::{ApplyResult, SnapshotInfo, Snapshotter};
pub use store::SnapshotKind;
