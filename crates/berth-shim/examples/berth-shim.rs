//! The shim binary built from this crate alone, for the integration tests
//! (the real binary lives in the `berth` package, which pulls in the daemon).
fn main() {
    std::process::exit(berth_shim::main());
}
