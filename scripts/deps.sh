#!/bin/bash
# Installs the Debian 12 packages vessel needs. Idempotent: packages already
# installed are left alone.
#   deps.sh              everything: build, run and test (scripts/test.sh)
#   deps.sh quickstart   only what scripts/quickstart.sh needs: build the vessel
#                        binary, run a busybox container, QEMU for booting Debian's
#                        kernel in the VM harness (the kernel itself is not installed:
#                        scripts/guest-kernel.sh unpacks it into a cache)
# Prints how long apt-get update, the download and the installation took.
# For the quick start dpkg runs with --force-unsafe-io (this installation only; nothing
# is configured): no fsync of each unpacked file. On a fresh Debian 12 root on this
# project's (virtual, CPU-bound) development machine that cut the I/O wait while dpkg ran
# from 1-5 s to 0.5-1.5 s, within the noise of the total; on a slow disk the fsyncs
# cost more. A crash in the middle of it can leave empty files, which
# `apt-get install --reinstall` repairs.
set -euo pipefail
QUICKSTART=(
  # build the vessel binary (libarchive/libssl headers: the image verbs dlopen them)
  g++ make cmake ninja-build pkg-config libseccomp-dev nlohmann-json3-dev libcli11-dev libarchive-dev libssl-dev
  # the demos: a busybox rootfs; QEMU for the VM harness on hosts without nested KVM
  busybox-static python3 qemu-system-x86 cpio
)
PKGS=(
  "${QUICKSTART[@]}"
  # the VM tests' guest and VM harness kernel (/boot/vmlinuz-*-cloud-amd64)
  linux-image-cloud-amd64
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
dpkg_opts=()
[[ ${1:-} == quickstart ]] && PKGS=("${QUICKSTART[@]}") dpkg_opts=(-o Dpkg::Options::=--force-unsafe-io)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "vessel: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  t0=$SECONDS
  apt-get update -qq
  t1=$SECONDS
  apt-get install -y -qq --no-install-recommends --download-only "${missing[@]}" >/dev/null
  t2=$SECONDS
  apt-get install -y -qq --no-install-recommends "${dpkg_opts[@]}" "${missing[@]}" >/dev/null
  echo "vessel: packages: apt-get update $((t1 - t0)) s, download $((t2 - t1)) s, install $((SECONDS - t2)) s"
fi
