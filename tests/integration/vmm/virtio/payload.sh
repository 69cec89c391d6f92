#!/bin/sh
# The tier-2 virtio test, run as root inside L1 (a QEMU-TCG VM with nested
# SVM): boots the inner guest under `vessel vm run` with a raw disk, a qcow2
# overlay on a raw base, a read-only disk, a tap and virtio-rng, then checks
# the images from L1. Prints "VESSEL-CHECK <name> PASS|FAIL".
# Environment (defaults in brackets):
#   VESSEL [/vessel or `vessel` in PATH]   VT_DIR [/virtio]: made by prepare.sh
#   VT_KERNEL [/guest/vmlinuz, else /vmlinuz]   VT_BENCH=1: run the guest benchmark too
D=${VT_DIR:-/virtio}
V=${VESSEL:-$( [ -x /vessel ] && echo /vessel || command -v vessel )}
K=${VT_KERNEL:-$( [ -f /guest/vmlinuz ] && echo /guest/vmlinuz || echo /vmlinuz )}
mark() { echo "VESSEL-CHECK $1 $2"; }
pf() { if [ "$2" = 0 ]; then mark "$1" PASS; else mark "$1" FAIL; fi; }
tool() { n=$1; shift; "$D/tools/lib/ld-linux-x86-64.so.2" --library-path "$D/tools/lib" "$D/tools/bin/$n" "$@"; }

[ -e /dev/net/tun ] || insmod "$D/mod/tun.ko" 2>/dev/null
[ -e /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }
W=/tmp/vt; mkdir -p $W; cp "$D"/img/* $W/   # work on copies: the prepared images stay pristine
md5=$(cat "$D/blob.md5")

# The tap exists once vessel opened it; give it the host address then.
( for i in $(seq 300); do ip link show vtap0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip addr add 10.0.2.1/24 dev vtap0; ip link set vtap0 up ) &
tap_setup=$!
httpd -f -p 8080 -h "$D/www" &
httpd_pid=$!
bench=; bench_disk=
if [ "${VT_BENCH:-0}" = 1 ]; then bench=vt_bench=1; bench_disk="--disk $W/bench.img,serial=benchdisk"; fi
{ "$V" vm run --kernel "$K" --initrd "$D/inner.cpio.gz" --memory 256M --cpus 1 \
    --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init loglevel=4 vt_md5=$md5 $bench" \
    --disk "$W/raw.img,serial=rawdisk" --disk "$W/overlay.qcow2,serial=qcowdisk" \
    --disk "$W/ro.img,readonly,serial=rodisk" \
    --disk "$W/limit.img,serial=limitdisk,bandwidth=2M,iops=100" --net tap=vtap0,mac=52:54:00:12:34:56 --rng $bench_disk </dev/null
  echo $? > /tmp/vt.rc; } 2>&1 | tee /tmp/vt.log
kill $tap_setup $httpd_pid 2>/dev/null

pf vessel-exit "$([ "$(cat /tmp/vt.rc)" = 0 ]; echo $?)"
pf guest-done "$(grep -q GUEST-DONE /tmp/vt.log; echo $?)"
grep '^GUEST-CHECK ' /tmp/vt.log | tr -d '\r' | while read -r _ name res; do mark "virtio-$name" "$res"; done
pf host-raw-file "$(tool debugfs -R 'cat /guest.txt' $W/raw.img 2>/dev/null | grep -q written-by-guest-raw; echo $?)"
tool qemu-img check $W/overlay.qcow2 > /tmp/check.txt 2>&1; rc=$?; cat /tmp/check.txt
pf host-qcow2-check "$([ $rc = 0 ] && grep -q 'No errors' /tmp/check.txt; echo $?)"
tool qemu-img convert -O raw $W/overlay.qcow2 $W/flat.raw
pf host-qcow2-file "$(tool debugfs -R 'cat /guest.txt' $W/flat.raw 2>/dev/null | grep -q written-by-guest-qcow2; echo $?)"
pf host-qcow2-backing-data "$(tool debugfs -R 'cat /base.txt' $W/flat.raw 2>/dev/null | grep -q from-base-image; echo $?)"
(cd $W && md5sum -c "$D/images.md5" >/dev/null 2>&1); pf host-base-and-ro-unchanged $?
rm -f $W/flat.raw
