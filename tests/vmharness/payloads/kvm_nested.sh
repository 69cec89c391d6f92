#!/bin/sh
# Payload of ctest vmharness.kvm_nested: KVM works inside the L1 test host (nested SVM
# under QEMU TCG) and a vCPU really runs guest code (vessel-kvmcheck, via --bin).
set -u
flags=$(grep -m1 '^flags' /proc/cpuinfo)
for f in svm npt; do
  case " $flags " in *" $f "*) ;; *) echo "FAIL: L1 CPU lacks the $f flag (QEMU -cpu max?)"; exit 1 ;; esac
done
echo "L1 CPU offers svm and npt"
if [ ! -c /dev/kvm ]; then
  echo "FAIL: no /dev/kvm after insmod; kernel log:"
  dmesg | grep -i -E 'kvm|svm|irqbypass'
  exit 1
fi
vessel-kvmcheck --require-npt || exit 1
# What an L2 boot with `vessel vm run` needs is in place.
for f in /guest/vmlinuz /guest/initrd.cpio; do
  [ -s "$f" ] || { echo "FAIL: $f missing or empty"; exit 1; }
done
cpio -it < /guest/initrd.cpio 2>/dev/null | grep -qx init || { echo "FAIL: /guest/initrd.cpio has no /init"; exit 1; }
echo "L2 guest kernel and initramfs present"
