//! Builds the static `--init` binary (init/init.c) with the system C
//! compiler. Where a static libc is missing, the daemon is built without it
//! and `--init` answers with a clear error instead.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=init/init.c");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("berth-init");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let ok = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-o"])
        .arg(&out)
        .arg("init/init.c")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        println!("cargo:warning=could not build the static init binary; --init will be unavailable");
        let _ = std::fs::write(&out, b"");
    }
}
