#!/bin/bash
# ctest vmharness.criu: checkpoint/restore of containers through CRIU, in the VM harness.
#   run_harness.sh VESSEL [harness.sh options...]
# CRIU 3.17 cannot run on the development host (its 6.18 PVM kernel: "vdso: Unexpected rt
# vDSO area bounds"), so the checks run in L1 (Debian's 6.1 kernel). CRIU's kernel
# feature probe needs nf_tables (its network locking, through libnftables: L1 has no
# iptables) and a dump of a network namespace needs every *_diag module (it lists the
# sockets of each family; a missing udp_diag fails the dump without an error line);
# L1's initramfs loads only KVM, so they are staged here (decompressed, in dependency
# order) and loaded by the payload (conntrack: CRIU saves a namespace's connection table
# through ctnetlink). CRIU saves tmpfs contents with GNU tar (busybox's
# lacks its options) and a network namespace's addresses with iproute2's `ip addr save`
# (busybox's ip has no save): both copied in too. Exit 77 (skip) only when criu itself is
# not installed; the harness skips on its own when QEMU or the kernel is missing.
# containerd and podman (when installed) drive vessel there too; the ctest is vmharness.criu.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
harness=$here/../../vmharness/harness.sh
vessel=${1:?usage: run_harness.sh VESSEL [harness options]}
shift
criu=${VESSEL_CRIU:-$(command -v criu || echo /usr/sbin/criu)}
if [[ ! -x $criu ]]; then
  echo "SKIP: criu is not installed (apt-get install criu)"
  [[ ${VESSEL_HARNESS_REQUIRE:-0} == 1 ]] && exit 1  # CI: everything must be there
  exit 77
fi
ip=$(command -v ip || echo /usr/sbin/ip)
. "$(dirname "$0")/../../vmharness/kernel.sh"
kernel=$VESSEL_HARNESS_KERNEL
moddir=/lib/modules/$(basename "$kernel" | sed 's/^vmlinuz-//')
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vessel-criu-harness.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/criu-modules"
n=10
for m in libcrc32c nfnetlink nf_tables nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack nf_conntrack_netlink unix_diag inet_diag tcp_diag udp_diag raw_diag netlink_diag af_packet_diag; do
  f=$(find "$moddir" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) -print -quit 2>/dev/null || true)
  if [[ -z $f ]]; then
    echo "note: module $m not found under $moddir (CRIU may refuse to start in L1)"
    continue
  fi
  out=$tmp/criu-modules/$n-$m.ko
  case $f in
    *.ko) cp "$f" "$out" ;;
    *.ko.xz) xz -dc "$f" >"$out" ;;
    *.ko.zst) zstd -qdc "$f" >"$out" ;;
    *.ko.gz) gzip -dc "$f" >"$out" ;;
  esac
  n=$((n + 1))
done
# containerd's runc shim, with a busybox image built here (engine_lib.sh: bash, which L1 lacks).
engine=()
if command -v containerd >/dev/null && command -v ctr >/dev/null && command -v containerd-shim-runc-v2 >/dev/null &&
  [[ -x /bin/busybox ]]; then
  busybox=/bin/busybox
  # shellcheck source=../containerd/engine_lib.sh
  . "$here/../containerd/engine_lib.sh"
  mkdir -p "$tmp/criu-image" "$tmp/rootfs"
  build_rootfs "$tmp/rootfs"
  oci_archive "$tmp/rootfs" "$tmp/criu-image/busybox.tar" docker.io/library/criu-busybox:latest
  rm -rf "$tmp/rootfs"
  engine=(--bin "$(command -v containerd)" --bin "$(command -v containerd-shim-runc-v2)" --bin "$(command -v ctr)"
          --extra "$tmp/criu-image")
else
  echo "note: containerd, ctr or busybox-static missing: the containerd check will be skipped"
fi
# podman and conmon (podman_test.sh's setup, in L1's busybox shell).
podman=()
if command -v podman >/dev/null && command -v conmon >/dev/null && [[ -f /etc/containers/policy.json ]]; then
  podman=(--bin "$(command -v podman)" --bin "$(command -v conmon)" --file /etc/containers/policy.json:/etc/containers/policy.json)
else
  echo "note: podman, conmon or /etc/containers/policy.json missing: the podman check will be skipped"
fi
rc=0
"$harness" run --vessel "$vessel" --payload "${CRIU_CHECKS_DIR:-$here/vm-checks}" --bin "$criu" --bin "$(command -v tar)" --bin "$ip" \
  --extra "$tmp/criu-modules" --extra "$here/vm-lib" "${engine[@]}" "${podman[@]}" --timeout 240 "$@" || rc=$?
exit $rc
