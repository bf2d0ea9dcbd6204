#!/usr/bin/env bash
# Installs the Debian packages berth needs to build, run and be tested, when
# they are missing. Safe to run again; does nothing when all are present.
set -euo pipefail

# Build: libseccomp/libelf for the runtime. Run: nftables, busybox-static for
# test images, debootstrap for the debian/python test image. Tests: the
# distribution registry, Debian's dockerd as the side-by-side reference,
# runc as the alternative OCI runtime, hyperfine/tmux for benches and TTY tests.
PKGS=(build-essential pkg-config libseccomp-dev libelf-dev busybox-static nftables iproute2
      debootstrap docker-registry docker.io runc hyperfine tmux apache2-utils ca-certificates curl)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Package scripts must not start services (dockerd, registry) on the
  # machine's default sockets: berth's tests start their own, side by side.
  guard=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    guard=1
  fi
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ "$guard" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
# Installing docker.io or docker-registry may still have started them through
# another init path; the defaults must not be left running.
for svc in docker docker-registry containerd; do
  if command -v service >/dev/null 2>&1; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
exit 0
