//! `cargo xtask bench`: the performance figures of berth, side by side with
//! dockerd when the reference dockerd (scripts/dockerd-ref.sh) is running.
//!
//! Figures are wall-clock medians of repeated runs of real commands; nothing
//! here is a test. Each figure prints berth, dockerd and dockerd/berth.

mod bench;
mod bench_net;
mod bench_registry;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench::run(&args[1..]),
        _ => bail!("usage: cargo xtask bench [--only a,b] [--images N] [--runs N] [--fixtures DIR]"),
    }
}
