#!/bin/sh
# Payload of ctest vmharness.cpu_fidelity: the L2 test guest sees the same CPU under
# `vessel vm run` as under QEMU/KVM `-cpu host` (the reference VMM, run in the same L1):
# the same /proc/cpuinfo flags (the TSC-deadline timer, x2apic, the hypervisor bit and
# every feature KVM passes through) and the same model name. Only differences print.
[ -c /dev/kvm ] || { echo "FAIL: no /dev/kvm in L1"; exit 1; }
cmdline="console=ttyS0 quiet panic=-1 pci=off vessel.cpuinfo"
# cpu_lines VMM LOG: boots the guest under VMM (vessel or qemu), its console to LOG; a
# boot that ended before the guest printed its CPU (L1's nested SVM now and then shuts
# an L2 guest down: tests/vmharness/README.md) is made once more, with a note.
cpu_lines() {
  for attempt in 1 2; do
    if [ "$1" = vessel ]; then
      timeout 150 vessel vm run --kernel /guest/vmlinuz --initrd /guest/initrd.cpio --cpus 1 --memory 256M \
        --cmdline "$cmdline" </dev/null >"$2" 2>&1
    else
      timeout 150 /usr/local/bin/qemu-system-x86_64 -accel kvm -cpu host -M microvm -m 256 -smp 1 \
        -nodefaults -no-user-config -nographic -serial stdio -monitor none -no-reboot \
        -bios /usr/share/qemu/bios-microvm.bin -kernel /guest/vmlinuz -initrd /guest/initrd.cpio \
        -append "$cmdline" </dev/null >"$2" 2>&1
    fi
    grep -q 'VESSEL-GUEST-CPU flags=' "$2" && return 0
    echo "VESSEL-NOTE $1's guest printed no CPU line (attempt $attempt); console tail: $(tail -c 300 "$2" | tr '\n' '|')"
  done
  return 1
}
cpu_lines vessel /tmp/v.log || { echo "FAIL: no VESSEL-GUEST-CPU line from the guest under vessel"; exit 1; }
cpu_lines qemu /tmp/q.log || { echo "FAIL: no VESSEL-GUEST-CPU line from the guest under QEMU (the reference)"; exit 1; }
field() { tr -d '\r' <"$1" | sed -n "s/^VESSEL-GUEST-CPU $2=//p" | head -n 1; }
words() { echo "$1" | tr ' ' '\n' | grep . | sort; }
words "$(field /tmp/v.log flags)" >/tmp/v.flags
words "$(field /tmp/q.log flags)" >/tmp/q.flags
echo "vessel: $(wc -l </tmp/v.flags) flags, model '$(field /tmp/v.log model)'"
echo "QEMU:   $(wc -l </tmp/q.flags) flags, model '$(field /tmp/q.log model)'"
rc=0
# (busybox's grep -vxF -f takes an empty pattern file as matching every line)
[ -s /tmp/v.flags ] && [ -s /tmp/q.flags ] || { echo "FAIL: a guest printed no flags"; exit 1; }
only_v=$(grep -vxF -f /tmp/q.flags /tmp/v.flags | tr "\n" " ")
only_q=$(grep -vxF -f /tmp/v.flags /tmp/q.flags | tr "\n" " ")
[ -z "$only_v" ] || { echo "FAIL: flags only under vessel: $only_v"; rc=1; }
[ -z "$only_q" ] || { echo "FAIL: flags only under QEMU: $only_q"; rc=1; }
[ "$(field /tmp/v.log model)" = "$(field /tmp/q.log model)" ] || { echo "FAIL: the model names differ"; rc=1; }
grep -q tsc_deadline_timer /tmp/v.flags || { echo "FAIL: no tsc_deadline_timer under vessel"; rc=1; }
[ $rc = 0 ] && echo "PASS: the guest sees the same CPU under vessel and QEMU -cpu host"
exit $rc
