#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests (no root needed) and,
# when run as root, the integration tests that start their own daemons.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# The same container tests through runc as the OCI runtime (root only; the
# tests skip themselves otherwise).
if command -v runc >/dev/null 2>&1; then
  BERTH_TEST_RUNTIME=runc cargo test --locked -p berth --test containers
fi
