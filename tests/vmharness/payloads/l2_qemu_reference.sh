#!/bin/sh
# Payload of ctest vmharness.l2_qemu_reference: boots the L2 test guest (/guest/vmlinuz,
# /guest/initrd.cpio) with QEMU/KVM inside L1 (QEMU and its microvm firmware come in via
# --bin/--file). This is the reference for `vessel vm run`: when this passes and vessel
# fails on the same guest, the VMM is at fault, not nested KVM or the guest image.
[ -c /dev/kvm ] || { echo "FAIL: no /dev/kvm in L1"; exit 1; }
start=$(cut -d' ' -f1 /proc/uptime)
timeout 150 /usr/local/bin/qemu-system-x86_64 -accel kvm -cpu host -M microvm -m 256 -smp 2 \
  -nodefaults -no-user-config -nographic -serial stdio -monitor none -no-reboot \
  -bios /usr/share/qemu/bios-microvm.bin \
  -kernel /guest/vmlinuz -initrd /guest/initrd.cpio \
  -append "console=ttyS0 quiet panic=-1 pci=off" </dev/null >/tmp/l2.log 2>&1
rc=$?
end=$(cut -d' ' -f1 /proc/uptime)
sed 's/^/L2| /' /tmp/l2.log
echo "L2 QEMU/KVM exited with $rc after $(awk "BEGIN {print $end - $start}")s"
grep -q 'VESSEL-GUEST-UP cpus=2' /tmp/l2.log || { echo "FAIL: no 'VESSEL-GUEST-UP cpus=2' from L2"; exit 1; }
[ "$rc" -eq 0 ] || { echo "FAIL: L2 QEMU exit code $rc (124: it did not power off)"; exit 1; }
echo "PASS: L2 Linux booted under nested SVM KVM"
