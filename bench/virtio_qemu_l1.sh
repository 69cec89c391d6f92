#!/bin/sh
# Runs in L1 after the virtio payload (see virtio_compare.sh): boots the same
# inner guest under QEMU/KVM with virtio-mmio blk/net/rng on the same images,
# so the guest benchmark runs on QEMU's devices. QEMU and its libraries come
# from the /qemu directory that virtio_compare.sh adds to the L1 initramfs.
# The runs alternate (vessel already ran once): QEMU, vessel, QEMU, so a
# change in the shared host's load hits both columns.
D=${VT_DIR:-/virtio}; K=${VT_KERNEL:-/vmlinuz}; W=/tmp/vtq
run_qemu() {
rm -rf /tmp/vt /tmp/vtq  # the previous run's copies: L1 RAM is tight
mkdir -p $W; cp "$D"/img/* $W/ || echo "BENCH-ERROR copy images"
( for i in $(seq 300); do ip link show vtap0 >/dev/null 2>&1 && break; sleep 0.1; done
  ip addr add 10.0.2.1/24 dev vtap0; ip link set vtap0 up ) &
tap_setup=$!
httpd -f -p 8080 -h "$D/www" &
httpd_pid=$!
echo "BENCH-VMM qemu"
/qemu/lib/ld-linux-x86-64.so.2 --library-path /qemu/lib /qemu/qemu-system-x86_64 -L /qemu/share \
  -accel kvm -cpu host -M microvm -m 256M -smp 1 -nodefaults -no-user-config -nographic -serial stdio -no-reboot \
  -kernel "$K" -initrd "$D/inner.cpio.gz" \
  -append "console=ttyS0 reboot=k panic=-1 rdinit=/init loglevel=4 vt_md5=$(cat "$D/blob.md5") vt_bench=1" \
  -drive id=d0,file=$W/raw.img,format=raw,if=none -device virtio-blk-device,drive=d0,serial=rawdisk \
  -drive id=d1,file=$W/overlay.qcow2,format=qcow2,if=none -device virtio-blk-device,drive=d1,serial=qcowdisk \
  -drive id=d2,file=$W/ro.img,format=raw,if=none,readonly=on -device virtio-blk-device,drive=d2,serial=rodisk \
  -drive id=d3,file=$W/bench.img,format=raw,if=none -device virtio-blk-device,drive=d3,serial=benchdisk \
  -netdev tap,id=n0,ifname=vtap0,script=no,downscript=no -device virtio-net-device,netdev=n0,mac=52:54:00:12:34:56 \
  -device virtio-rng-device </dev/null
echo "QEMU-EXIT=$?"
kill $tap_setup $httpd_pid 2>/dev/null
}
run_qemu
rm -rf /tmp/vtq
echo "BENCH-VMM vessel"
VT_BENCH=1 sh /payload.sh | grep -E '^(BENCH|VESSEL-CHECK.*FAIL)'
run_qemu
