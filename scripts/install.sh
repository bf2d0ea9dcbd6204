#!/usr/bin/env bash
# Installs berth: the Debian packages it needs, then the binaries
# (berth, berth-shim, berth-runtime) with cargo into ~/.cargo/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo install --locked --path crates/berth
for b in berth berth-shim berth-runtime; do
  # Make them reachable from sudo's secure_path and for the daemon's children.
  ln -sf "$(command -v "$b" || echo "$HOME/.cargo/bin/$b")" "/usr/local/bin/$b"
done
echo "installed: $(/usr/local/bin/berth --version)"
