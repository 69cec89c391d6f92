#!/bin/bash
# Quick start, command 1: installs what is needed, builds vessel, then runs
#   - a container from a busybox rootfs (Debian's busybox-static) that prints its
#     hostname, its PID 1 and its mounts, and
#   - a VM booting Debian's own kernel (linux-image-cloud-amd64) with a busybox
#     initramfs that prints a marker and powers off.
# On a host whose /dev/kvm cannot boot Linux (PVM) or has none, the VM runs nested
# inside the VM harness (QEMU-TCG test host with KVM), as the tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "vessel: run the quick start as root" >&2; exit 1; }
./scripts/deps.sh
./scripts/build.sh
vessel=$PWD/build/vessel
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

echo "== VM: Debian's kernel, vessel vm run"
kernel=$(ls /boot/vmlinuz-*-cloud-amd64 | sort -V | tail -n 1)
if [ -c /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then
  tests/vmharness/guest-initramfs.sh "$demo/guest.cpio"
  "$vessel" vm run --kernel "$kernel" --initrd "$demo/guest.cpio" --cpus 2 --memory 256M \
    --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init"
else
  echo "(this host's /dev/kvm cannot boot Linux: booting it nested in the VM harness)"
  VESSEL_HARNESS_KERNEL=$kernel tests/vmharness/harness.sh run --vessel "$vessel" \
    --payload tests/integration/vmm/boot/bzimage --extra tests/integration/vmm/boot --timeout 240
fi
echo "== done: a container and a VM ran"
