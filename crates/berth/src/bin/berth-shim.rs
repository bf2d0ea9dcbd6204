//! The per-container shim (DESIGN.md §2). All logic lives in the `berth-shim` crate.
fn main() {
    std::process::exit(berth_shim::main());
}
