#!/usr/bin/env bash
# build_image.sh: builds (once, then cached) the full-system test guest: a Debian 12
# root file system made by mmdebstrap from Debian's packages (minbase + systemd, dbus, udev,
# iproute2, util-linux-extra for hwclock, and the modules of the harness's cloud kernel),
# with the unit guest/vessel-fidelity.service that reports on the serial console at
# multi-user.target and then powers off (reboots with vessel.fs=reboot on the command
# line); systemd-networkd gives a NIC 10.4.0.2/24.
#
#   build_image.sh [KERNEL]      KERNEL: default $VESSEL_HARNESS_KERNEL or
#                                /boot/vmlinuz-6.1.0-56-cloud-amd64 (the harness kernel)
# Prints the cache directory holding
#   rootfs.raw     ext4, 1 GiB sparse (root=/dev/vda)
#   rootfs.qcow2   the same as qcow2 (v3), followed by 256 MiB of zeros: the room its
#                  new clusters need when a block device of L1 holds it
#   initrd.cpio.gz busybox /init (guest/initrd-init) + virtio_mmio/virtio_pci/virtio_blk
# The cache is ${VESSEL_TEST_CACHE:-/var/tmp/vessel-test-cache}/fullsystem-<key>, the key
# being the sha256 of this script, the guest files and the kernel. Needs root (mmdebstrap
# in root mode), apt access to Debian's packages, busybox-static, mkfs.ext4, qemu-img.
# Exit 77 (with the reason on stderr) when any of that is missing or apt cannot download.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KERNEL=${1:-${VESSEL_HARNESS_KERNEL:-/boot/vmlinuz-6.1.0-56-cloud-amd64}}
CACHE=${VESSEL_TEST_CACHE:-/var/tmp/vessel-test-cache}
BUSYBOX=${VESSEL_HARNESS_BUSYBOX:-/bin/busybox}
skip() { echo "SKIP: $*" >&2; exit 77; }
log() { echo "build_image: $*" >&2; }

[[ $(id -u) == 0 ]] || skip "building the Debian image needs root (mmdebstrap)"
[[ -f $KERNEL ]] || skip "kernel $KERNEL not found"
KVER=$(basename "$KERNEL"); KVER=${KVER#vmlinuz-}
MODS=/lib/modules/$KVER
[[ -d $MODS ]] || skip "modules of $KVER not found in $MODS"
for t in mmdebstrap mkfs.ext4 qemu-img cpio gzip modprobe depmod chroot flock; do
  command -v $t >/dev/null || skip "$t not found"
done
[[ -x $BUSYBOX ]] && ! ldd "$BUSYBOX" >/dev/null 2>&1 || skip "static busybox $BUSYBOX not found (busybox-static)"

key=$( (cat "$0" "$HERE"/guest/*; echo "$KVER"; sha256sum "$KERNEL" "$BUSYBOX") | sha256sum | cut -c1-16)
OUT=$CACHE/fullsystem-$key
if [[ -f $OUT/done ]]; then echo "$OUT"; exit 0; fi
mkdir -p "$CACHE"
exec 9>"$CACHE/fullsystem.lock"
flock 9   # one build at a time; a waiting run then finds it done
if [[ -f $OUT/done ]]; then echo "$OUT"; exit 0; fi

T=$(mktemp -d "$CACHE/fullsystem-build.XXXXXX")
trap 'rm -rf "$T"' EXIT
t0=$SECONDS
R=$T/root
log "mmdebstrap bookworm (cache miss: $OUT)"
# The system's tools only (a python3 shim of pyenv or the like on PATH costs seconds per
# package); no path-exclude filters, which pipe every package through mmtarfilter.
if ! PATH=/usr/sbin:/usr/bin:/sbin:/bin nice mmdebstrap --mode=root --variant=minbase \
     --format=directory --include=systemd,systemd-sysv,dbus,udev,iproute2,kmod,util-linux-extra,procps \
     bookworm "$R" >"$T/mmdebstrap.log" 2>&1; then
  tail -n 15 "$T/mmdebstrap.log" >&2
  skip "mmdebstrap could not build Debian 12 (no apt access to Debian's packages?)"
fi

# The system: the harness kernel's modules, root on /dev/vda, a fixed machine-id (not a
# first boot: every boot does the same work), the test unit, networkd for the NIC.
mkdir -p "$R/lib/modules"
cp -a "$MODS" "$R/lib/modules/"
depmod -b "$R" "$KVER"
echo vessel-fs >"$R/etc/hostname"
echo 'vessel0fidelity0test0000000000000' | cut -c1-32 | tr -c '0-9a-f\n' 0 >"$R/etc/machine-id"
printf '/dev/vda / ext4 defaults 0 0\n' >"$R/etc/fstab"
install -m 644 "$HERE/guest/vessel-fidelity.service" "$R/etc/systemd/system/"
install -m 755 "$HERE/guest/vessel-fidelity" "$R/usr/local/sbin/"
install -m 644 "$HERE/guest/10-vessel.network" "$R/etc/systemd/network/"
chroot "$R" systemctl enable vessel-fidelity.service systemd-networkd.service >/dev/null 2>&1
# Nothing waits for a network that a VM without a NIC never gets.
chroot "$R" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
rm -rf "$R"/var/cache/apt/* "$R"/var/lib/apt/lists/*

log "ext4 and qcow2 images"
mkfs.ext4 -q -F -L vessel-fs -d "$R" "$T/rootfs.raw" 1G
qemu-img convert -f raw -O qcow2 -o compat=1.1 "$T/rootfs.raw" "$T/rootfs.qcow2"
truncate -s +256M "$T/rootfs.qcow2"

# The initrd: busybox, the virtio modules (with their dependencies), guest/initrd-init.
I=$T/initrd
mkdir -p "$I"/{bin,mod,proc,sys,dev,newroot}
cp "$BUSYBOX" "$I/bin/busybox"
install -m 755 "$HERE/guest/initrd-init" "$I/init"
: >"$I/mod/order"
for m in virtio_mmio virtio_pci virtio_blk; do
  modprobe -d / -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" {print $2}' | while read -r f; do
    n=$(basename "$f"); n=${n%%.ko*}
    grep -qx "$n" "$I/mod/order" && continue
    case $f in *.xz) xz -dc "$f" ;; *.zst) zstd -qdc "$f" ;; *) cat "$f" ;; esac >"$I/mod/$n.ko"
    echo "$n" >>"$I/mod/order"
  done
done
(cd "$I" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet | gzip -1) >"$T/initrd.cpio.gz"

mkdir -p "$T/out"
mv "$T/rootfs.raw" "$T/rootfs.qcow2" "$T/initrd.cpio.gz" "$T/out/"
du -sh --apparent-size "$R" | awk '{print "root file system " $1}' >"$T/out/info"
echo "built in $((SECONDS - t0)) s" >>"$T/out/info"
touch "$T/out/done"
rm -rf "$OUT"; mv "$T/out" "$OUT"
# Keep the two newest builds.
ls -dt "$CACHE"/fullsystem-????????????????  2>/dev/null | tail -n +3 | xargs -r rm -rf
log "$(tr '\n' ' ' <"$OUT/info")"
echo "$OUT"
