#!/bin/sh
# Live migration downtime and total time against QEMU's (migrate tcp: /
# -incoming), the same 512 MiB tiny guest idle and dirtying 10/100/1000
# MiB/s, side by side in one run: on this host's /dev/kvm where it has one
# (tier 1; BENCH_WHERE=l1 forces the harness), else inside the VM harness's
# L1 (nested KVM under QEMU TCG); plus vessel's local `vm upgrade`.
# Writes bench/results/migration.{csv,md,png}.
#   bench/migration_compare.sh [VESSEL_BINARY]   (default build/vessel)
# Environment: BENCH_RUNS (default 2), BENCH_RATES (default "0 10 100 1000"),
# BENCH_VMMS (default "vessel qemu"), BENCH_LIMIT (seconds a migration may take, 240),
# BENCH_SHMEM_THP (L1's shmem_enabled, default unchanged: never), BENCH_POSTCOPY=1
# (both VMMs post-copy: vessel --postcopy, QEMU postcopy-ram + migrate_start_postcopy;
# results in bench/results/migration_postcopy.*; rates then default to "100 1000").
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
rates="0 10 100 1000"; name=migration
[ -z "${BENCH_POSTCOPY:-}" ] || { rates="100 1000"; name=migration_postcopy; }
V=${1:-$HERE/../build/vessel}
X=$(mktemp -d /tmp/vessel-bench-mig.XXXXXX); trap 'rm -rf "$X"' EXIT
D=$X/bench-mig; mkdir -p "$D/qemu/lib" "$D/qemu/share"
g++ -std=c++20 -O2 -static -DVESSEL_BINARY='"vessel"' -I "$HERE/../tests" -o "$D/migration_guest" "$HERE/migration_guest.cc"
gcc -O2 -static -o "$D/migration_stamp" "$HERE/migration_stamp.c"
cp /usr/bin/qemu-system-x86_64 "$D/qemu/"
for lib in $(ldd /usr/bin/qemu-system-x86_64 | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do cp -L "$lib" "$D/qemu/lib/"; done
for f in bios-microvm.bin qboot.rom linuxboot_dma.bin pvh.bin; do [ -f /usr/share/qemu/$f ] && cp -L /usr/share/qemu/$f "$D/qemu/share/"; done
if [ -c /dev/kvm ] && [ "${BENCH_WHERE:-}" != l1 ]; then
  # Tier 1: the host's own KVM, where the issue's goals are defined (not run
  # here yet: this workplace's hosts have had no /dev/kvm since session 15).
  [ -z "${BENCH_SHMEM_THP:-}" ] || { echo "BENCH_SHMEM_THP sets a host-wide setting: only in L1 (BENCH_WHERE=l1)" >&2; exit 2; }
  mkdir -p "$X/bin" "$X/work"; ln -s "$(realpath "$V")" "$X/bin/vessel"
  { echo "BENCH-WHERE tier1"
    PATH="$X/bin:$PATH" BENCH_DIR="$D" BENCH_WORK="$X/work" BENCH_RUNS="${BENCH_RUNS:-2}" \
      BENCH_RATES="${BENCH_RATES:-$rates}" BENCH_VMMS="${BENCH_VMMS:-vessel qemu}" BENCH_LIMIT="${BENCH_LIMIT:-240}" \
      BENCH_POSTCOPY="${BENCH_POSTCOPY:-}" sh "$HERE/migration_l1.sh"; } | tee "$X/out.txt"
else
"$HERE/../tests/vmharness/harness.sh" run --vessel "$V" --payload "$HERE/migration_l1.sh" --extra "$D" \
  --memory 3072 --timeout "${BENCH_TIMEOUT:-3000}" --env "BENCH_RUNS=${BENCH_RUNS:-2}" \
  --env "BENCH_RATES=${BENCH_RATES:-$rates}" --env "BENCH_VMMS=${BENCH_VMMS:-vessel qemu}" \
  --env "BENCH_LIMIT=${BENCH_LIMIT:-240}" --env "BENCH_SHMEM_THP=${BENCH_SHMEM_THP:-}" \
  --env "BENCH_POSTCOPY=${BENCH_POSTCOPY:-}" | tee "$X/out.txt"
fi
[ -n "${BENCH_NO_RESULTS:-}" ] || python3 "$HERE/migration_results.py" "$X/out.txt" "$name"
