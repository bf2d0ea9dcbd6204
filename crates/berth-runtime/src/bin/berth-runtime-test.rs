//! The runtime as a binary of this package, so that its integration tests
//! can run it (`CARGO_BIN_EXE_*` only exists for the package's own binaries)
//! without building the whole `berth` package. The installed binary is
//! `berth-runtime` from the `berth` package; both only call the same `main`.
fn main() {
    std::process::exit(berth_runtime::main());
}
