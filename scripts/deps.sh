#!/bin/bash
# Installs the Debian 12 packages vessel needs to build, run and test.
# Idempotent: packages already installed are left alone.
set -euo pipefail
PKGS=(
  # build
  build-essential cmake g++ pkg-config libseccomp-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  # images: layer tars (gzip/zstd) and sha256; skopeo/umoci for round-trip checks
  libarchive-dev libssl-dev skopeo umoci
  # containers: a busybox rootfs, the peers we are measured against, the engines that drive us
  # (podman, Docker, containerd), CRIU for checkpoint/restore, script(1) for tty checks
  busybox-static crun runc podman uidmap python3 docker.io containerd criu bsdutils
  # VMs: Debian's kernel as guest, QEMU for the nested test harness, disk tools
  linux-image-cloud-amd64 qemu-system-x86 qemu-utils cpio e2fsprogs iproute2 time
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "vessel: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
