#!/bin/sh
# Runs inside the VM harness's L1: boots the same Debian kernel + busybox initramfs
# to its userspace marker and power-off, alternately with `vessel vm run` and with
# QEMU microvm (-accel kvm), RUNS times each; prints per-run times and peak RSS.
runs=${RUNS:-5}
log=/tmp/boot.log
now() { cut -d' ' -f1 /proc/uptime; }
i=0
while [ "$i" -lt "$runs" ]; do
  for vmm in vessel qemu; do
    t0=$(now)
    if [ $vmm = vessel ]; then
      /usr/bin/time -f "RSS_KB=%M" vessel vm run --kernel /guest/vmlinuz --initrd /guest/initrd.cpio --cpus 2 --memory 256M \
        --cmdline "console=ttyS0 quiet panic=-1 reboot=k rdinit=/init" --serial "file:$log" </dev/null 2>/tmp/rss
    else
      /usr/bin/time -f "RSS_KB=%M" qemu-system-x86_64 -accel kvm -cpu host -M microvm -m 256 -smp 2 \
        -nodefaults -no-user-config -nographic -serial "file:$log" -monitor none -no-reboot \
        -bios /usr/share/qemu/bios-microvm.bin -kernel /guest/vmlinuz -initrd /guest/initrd.cpio \
        -append "console=ttyS0 quiet panic=-1 pci=off rdinit=/init" </dev/null >/dev/null 2>/tmp/rss
    fi
    t1=$(now)
    up=no
    grep -q VESSEL-GUEST-UP "$log" && up=yes
    echo "BOOT vmm=$vmm run=$i seconds=$(awk "BEGIN {print $t1 - $t0}") marker=$up $(grep RSS_KB /tmp/rss)"
  done
  i=$((i + 1))
done
