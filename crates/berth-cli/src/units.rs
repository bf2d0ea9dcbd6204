//! Docker's human-readable units, shared by the CLI and the daemon (see `berth_units`).
pub use berth_units::*;
