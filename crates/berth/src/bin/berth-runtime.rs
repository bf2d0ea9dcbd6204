//! berth's runc-compatible OCI runtime. All logic lives in the `berth-runtime` crate.
fn main() {
    std::process::exit(berth_runtime::main());
}
