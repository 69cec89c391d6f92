#!/bin/bash
# Quick start, command 1: installs what is needed (scripts/deps.sh quickstart),
# builds only the vessel binary (Release, stripped: build-release/vessel), then runs
#   - a container from a busybox rootfs (Debian's busybox-static) that prints its
#     hostname, its PID 1 and its mounts, and
#   - a VM booting Debian's own cloud kernel with a busybox initramfs that prints a
#     marker and powers off. The kernel is not installed on the host: an installed
#     /boot/vmlinuz-*-cloud-amd64 is used, else scripts/guest-kernel.sh unpacks the
#     package into /var/cache/vessel/guest-kernel (fetched while the build runs).
# On a host whose /dev/kvm cannot boot Linux (PVM) or has none, the VM runs nested
# inside the VM harness (QEMU-TCG test host with KVM), as the tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "vessel: run the quick start as root" >&2; exit 1; }
tmp=$(mktemp -d)
kernel_job=''
# On an early exit the fetch, if still running, finishes on its own (into its cache).
trap 'if [[ -n $kernel_job ]]; then kill "$kernel_job" 2>/dev/null || true; fi; rm -rf "$tmp"' EXIT
t_start=$SECONDS
./scripts/deps.sh quickstart
t_deps=$SECONDS
# The guest kernel is fetched in the background: mostly waiting for the mirror.
t_kernel=$SECONDS
(./scripts/guest-kernel.sh >"$tmp/kernel" 2>"$tmp/kernel.log"; echo $? >"$tmp/kernel.rc"; echo $SECONDS >"$tmp/kernel.end") &
kernel_job=$!
# The build's CPU time: user+sys of everything build.sh ran, from bash's `times` in a
# subshell that has no other children (the kernel fetch is the main shell's child).
(./scripts/build.sh release && times >"$tmp/build.times")
t_build=$SECONDS
c_build=$(tail -n 1 "$tmp/build.times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%d", u[1] * 60 + u[2] + s[1] * 60 + s[2] }')
wait "$kernel_job"
kernel_job=''
if [[ $(cat "$tmp/kernel.rc") != 0 ]]; then
  cat "$tmp/kernel.log" >&2
  echo "vessel: no guest kernel for the VM demo (scripts/guest-kernel.sh failed)" >&2
  exit 1
fi
cat "$tmp/kernel.log" >&2
{ read -r kernel; read -r modules; } <"$tmp/kernel"
t_kernel_end=$(cat "$tmp/kernel.end")
t_demo=$SECONDS
vessel=$PWD/build-release/vessel
demo=/var/tmp/vessel-quickstart
rm -rf "$demo"
mkdir -p "$demo/bundle/rootfs/bin"

echo "== container: busybox rootfs, vessel run"
cp /bin/busybox "$demo/bundle/rootfs/bin/"
for a in sh cat hostname mount echo; do ln -s busybox "$demo/bundle/rootfs/bin/$a"; done
(cd "$demo/bundle" && "$vessel" spec)
python3 - "$demo/bundle/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["hostname"] = "vessel-demo"
c["process"]["args"] = ["sh", "-c",
    'echo "hostname: $(hostname)"; echo "PID 1: $(cat /proc/1/cmdline | tr "\\0" " ") (I am $$)"; echo mounts:; mount']
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
"$vessel" --root "$demo/state" run --bundle "$demo/bundle" demo

echo "== VM: Debian's kernel ($kernel), vessel vm run"
if [ -c /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
  tests/vmharness/guest-initramfs.sh "$demo/guest.cpio"
  "$vessel" vm run --kernel "$kernel" --initrd "$demo/guest.cpio" --cpus 2 --memory 256M \
    --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init"
else
  echo "(this host's /dev/kvm cannot boot Linux: booting it nested in the VM harness)"
  # One boot with 2 vCPUs (the tests also boot 1); L1 gets 1 GiB (the harness default is 2).
  tests/vmharness/harness.sh run --vessel "$vessel" --kernel "$kernel" --modules "$modules" --memory 1024 \
    --payload tests/integration/vmm/boot/bzimage/two_cpus.sh --extra tests/integration/vmm/boot --timeout 240
fi
t_end=$SECONDS
echo "== done: a container and a VM ran"
echo "time: packages $((t_deps - t_start)) s, build $((t_build - t_deps)) s (CPU $c_build s)," \
  "guest kernel $((t_kernel_end - t_kernel)) s (during the build), demos $((t_end - t_demo)) s, total $((t_end - t_start)) s"
echo "next: cmake --install build-release  (vessel, man pages, completions; see README.md)"
