#!/bin/bash
# Installs the Debian 12 packages vessel needs. Idempotent: packages already
# installed are left alone.
#   deps.sh              everything: build, run and test (scripts/test.sh)
#   deps.sh quickstart   only what scripts/quickstart.sh needs: build the vessel
#                        binary, run a busybox container, boot Debian's kernel
set -euo pipefail
QUICKSTART=(
  # build the vessel binary (libarchive/libssl headers: the image verbs dlopen them)
  g++ make cmake ninja-build pkg-config libseccomp-dev nlohmann-json3-dev libcli11-dev libarchive-dev libssl-dev
  # the demos: a busybox rootfs; Debian's kernel as guest, QEMU for the VM harness on hosts without nested KVM
  busybox-static python3 linux-image-cloud-amd64 qemu-system-x86 cpio
)
PKGS=(
  "${QUICKSTART[@]}"
  # tests and benchmarks
  build-essential g++ libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev
  # images: skopeo/umoci for round-trip checks
  skopeo umoci
  # containers: the peers we are measured against, the engines that drive us (podman,
  # Docker, containerd), CRIU for checkpoint/restore, script(1) for tty checks
  crun runc podman uidmap docker.io containerd criu bsdutils
  # VMs: disk tools; gcc builds the static vsock test client (tests/integration/vmm/overcommit)
  qemu-utils e2fsprogs iproute2 time gcc libc6-dev
  # the Debian package test (tests/integration/package), its man pages and completion
  mmdebstrap man-db bash-completion
  # bench/ plots
  gnuplot-nox
)
[[ ${1:-} == quickstart ]] && PKGS=("${QUICKSTART[@]}")
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
