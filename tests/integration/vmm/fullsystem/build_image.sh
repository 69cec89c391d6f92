#!/usr/bin/env bash
# build_image.sh: builds (once, then cached) the full-system test guest: a Debian 12
# root file system made by mmdebstrap from Debian's packages (minbase + systemd, dbus, udev,
# iproute2, util-linux-extra for hwclock, and the modules of the harness's cloud kernel),
# with the unit guest/vessel-fidelity.service that reports on the serial console at
# multi-user.target and then powers off (reboots with vessel.fs=reboot on the command
# line); systemd-networkd gives a NIC 10.4.0.2/24.
#
#   build_image.sh [KERNEL]      KERNEL: default $VESSEL_HARNESS_KERNEL or
#                                the newest /boot/vmlinuz-*-cloud-amd64 (the harness kernel)
# Prints the cache directory holding
#   rootfs.raw     ext4, 1 GiB sparse (root=/dev/vda)
#   rootfs.qcow2   the same as qcow2 (v3), followed by 256 MiB of zeros: the room its
#                  new clusters need when a block device of L1 holds it
#   initrd.cpio.gz busybox /init (guest/initrd-init) + virtio_mmio/virtio_pci/virtio_blk
# The cache is ${VESSEL_TEST_CACHE:-/var/tmp/vessel-test-cache}/fullsystem-<key>, the key
# being the sha256 of this script, the guest files and the kernel. Needs root (mmdebstrap
# in root mode), apt access to Debian's packages (mmdebstrap's default: deb.debian.org
# with bookworm-updates and -security; or VESSEL_DEBIAN_MIRROR), busybox-static,
# mkfs.ext4, qemu-img.
# Exit 77 (with the reason on stderr) when the mirror cannot be reached, and when a tool is
# missing unless VESSEL_HARNESS_REQUIRE=1 (then exit 1); any other failure exits 1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../../../vmharness/kernel.sh"
KERNEL=${1:-$VESSEL_HARNESS_KERNEL}
CACHE=${VESSEL_TEST_CACHE:-/var/tmp/vessel-test-cache}
BUSYBOX=${VESSEL_HARNESS_BUSYBOX:-/bin/busybox}
MIRROR=${VESSEL_DEBIAN_MIRROR:-}   # empty: mmdebstrap's default mirrors
# skip: a prerequisite of this host is missing (a failure where it must be there, in CI).
skip() {
  if [[ ${VESSEL_HARNESS_REQUIRE:-0} == 1 ]]; then
    echo "error: $* (VESSEL_HARNESS_REQUIRE=1, so this is a failure)" >&2; exit 1
  fi
  echo "SKIP: $*" >&2; exit 77
}
log() { echo "build_image: $*" >&2; }

[[ $(id -u) == 0 ]] || skip "building the Debian image needs root (mmdebstrap)"
[[ -f $KERNEL ]] || skip "kernel $KERNEL not found"
KVER=$(basename "$KERNEL"); KVER=${KVER#vmlinuz-}
MODS=/lib/modules/$KVER
[[ -d $MODS ]] || skip "modules of $KVER not found in $MODS"
for t in mmdebstrap mkfs.ext4 qemu-img cpio gzip modprobe depmod chroot flock unshare; do
  command -v $t >/dev/null || skip "$t not found"
done
[[ -x $BUSYBOX ]] && ! ldd "$BUSYBOX" >/dev/null 2>&1 || skip "static busybox $BUSYBOX not found (busybox-static)"

key=$( (cat "$0" "$HERE"/guest/*; echo "$KVER"; sha256sum "$KERNEL" "$BUSYBOX") | sha256sum | cut -c1-16)
OUT=$CACHE/fullsystem-$key
if [[ -f $OUT/done ]]; then echo "$OUT"; exit 0; fi
# The build runs in a mount namespace of its own, the tree on a tmpfs there: no disk I/O
# for dpkg's tens of thousands of files, nothing to delete after, and the mount goes away
# with the last process of the build, however it ends.
if [[ -z ${VESSEL_FS_BUILD_NS:-} ]]; then
  VESSEL_FS_BUILD_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi
mkdir -p "$CACHE"
exec 9>"$CACHE/fullsystem.lock"
flock 9   # one build at a time; a waiting run then finds it done
if [[ -f $OUT/done ]]; then echo "$OUT"; exit 0; fi

T=$(mktemp -d "$CACHE/fullsystem-build.XXXXXX")
trap 'umount "$T/root" 2>/dev/null; rm -rf "$T"' EXIT
t0=$SECONDS
phase() { log "$1 ($((SECONDS - t0)) s)"; phases+="${phases:+, }$1 $((SECONDS - t0)) s"; }
phases=
R=$T/root
mkdir "$R"
mount -t tmpfs -o size=2g,mode=755 vessel-fs-build "$R" || { echo "error: cannot mount a tmpfs on $R" >&2; exit 1; }
log "mmdebstrap bookworm from ${MIRROR:-deb.debian.org} (cache miss: $OUT)"
# The system's tools only (a python3 shim of pyenv or the like on PATH costs seconds per
# package); no path-exclude filters, which pipe every package through mmtarfilter.
# force-unsafe-io: dpkg does not fsync each file it unpacks (the tree is thrown away if the
# build fails, and mkfs copies it anyway). With the tmpfs, mmdebstrap took 74-82 s at load
# 5, against 98-107 s on the disk (load 2-5).
if ! PATH=/usr/sbin:/usr/bin:/sbin:/bin nice mmdebstrap --mode=root --variant=minbase \
     --format=directory --dpkgopt=force-unsafe-io --aptopt='Acquire::Languages "none"' \
     --include=systemd,systemd-sysv,dbus,udev,iproute2,kmod,util-linux-extra,procps \
     bookworm "$R" ${MIRROR:+"$MIRROR"} </dev/null >"$T/mmdebstrap.log" 2>&1; then
  tail -n 15 "$T/mmdebstrap.log" >&2
  # apt's words when the mirror is not there (no DNS, no route, refused, timed out).
  if grep -qiE "Temporary failure resolving|Could not resolve|Failed to fetch|Could not connect|Unable to connect|Network is unreachable|Connection (failed|timed out|refused)|No route to host" "$T/mmdebstrap.log"; then
    echo "SKIP: the Debian mirror ${MIRROR:-deb.debian.org} cannot be reached: the full-system image cannot be built (needs apt access to Debian's packages)" >&2
    exit 77
  fi
  echo "error: mmdebstrap could not build Debian 12 (its log above)" >&2
  exit 1
fi
phase mmdebstrap

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
# The serial getty on ttyS0 (console=ttyS0) shares the port with vessel-fidelity: systemd's
# vhangup() of ttyS0 as it starts the getty (TTYVHangup=yes; Type=idle: up to 5 s after
# multi-user.target) cut the unit's writes off (EIO) in one boot of three. The getty stays,
# without the hangup.
mkdir -p "$R/etc/systemd/system/serial-getty@ttyS0.service.d"
printf '[Service]\nTTYVHangup=no\n' >"$R/etc/systemd/system/serial-getty@ttyS0.service.d/no-vhangup.conf"
rm -rf "$R"/var/cache/apt/* "$R"/var/lib/apt/lists/*

phase "modules and units"
log "ext4 and qcow2 images"
# (stdout is the cache directory only: mkfs says "Creating regular file" even with -q)
mkfs.ext4 -q -F -L vessel-fs -d "$R" "$T/rootfs.raw" 1G >&2
qemu-img convert -f raw -O qcow2 -o compat=1.1 "$T/rootfs.raw" "$T/rootfs.qcow2" >&2
truncate -s +256M "$T/rootfs.qcow2"
phase "ext4 and qcow2"

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
phase initrd
echo "built in $((SECONDS - t0)) s (at the end of: $phases)" >>"$T/out/info"
touch "$T/out/done"
rm -rf "$OUT"; mv "$T/out" "$OUT"
# Keep the two newest builds.
ls -dt "$CACHE"/fullsystem-????????????????  2>/dev/null | tail -n +3 | xargs -r rm -rf
log "$(tr '\n' ' ' <"$OUT/info")"
echo "$OUT"
