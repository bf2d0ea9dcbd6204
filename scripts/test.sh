#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests (no root needed) and,
# when run as root, the integration tests that start their own daemons.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
