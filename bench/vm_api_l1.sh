#!/bin/sh
# The VM harness payload of `bench/vm_api.py --harness` (hosts without a
# usable /dev/kvm): in L1, on its nested KVM, RUNS interleaved rounds of
#   run -d   vessel vm run -d (a detached VMM with its API socket)
#   run      vessel vm run in the foreground (no API)
#   qemu     QEMU microvm (-accel kvm), the same guest
# each timed from spawn to the guest's first COM1 byte (vm_api_probe), then
# the VMM's VmRSS/VmHWM, then stopped. Prints
# "BENCH-ROW <kind> <round> <first output us> <VmRSS kB> <VmHWM kB>".
D=${BENCH_DIR:-/extra/vmapi-bench}
V=${VESSEL:-$(command -v vessel)}
P=$D/vm_api_probe
ELF=$D/count.elf
RUNS=${BENCH_RUNS:-10}
R=/tmp/bench-root; F=/tmp/bench-com1; : > /tmp/bench-rows
mkdir -p $R; rm -f $F; mkfifo $F
kb() { awk -v k="$2:" '$1 == k {print $2}' /proc/$1/status 2>/dev/null; }
gone() { j=0; while [ $j -lt 100 ] && [ -r /proc/$1/stat ] && [ "$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)" != Z ]; do sleep 0.05; j=$((j + 1)); done; }
# Rows go to a file, printed after each round once its VMs stopped: console lines
# written while VMs run can interleave with them.
row() { echo "BENCH-ROW $1 $2 $3 $(kb $4 VmRSS) $(kb $4 VmHWM)" >> /tmp/bench-rows; }
qemu_argv="$D/qemu/lib/ld-linux-x86-64.so.2 --library-path $D/qemu/lib $D/qemu/qemu-system-x86_64 -L $D/qemu/share"
[ -x $D/qemu/qemu-system-x86_64 ] || qemu_argv=
i=0
while [ $i -lt $((RUNS + 1)) ]; do  # round 0: warm-up (page cache), reported as such
  set -- $($P $F $V --root $R vm run -d --name b$i --kernel $ELF --serial file:$F)
  sleep 0.3; vmm=$(grep -o '"pid":[0-9]*' $R/vm/b$i/vmm.json | cut -d: -f2)
  row run-d $i $1 $vmm
  $V --root $R vm delete --force b$i >/dev/null
  set -- $($P $F $V vm run --kernel $ELF --serial file:$F)
  sleep 0.3; row run $i $1 $2
  kill -TERM $2; gone $2
  if [ -n "$qemu_argv" ]; then
    set -- $($P $F $qemu_argv -M microvm -accel kvm -m 128M -nodefaults -no-user-config -display none \
      -serial file:$F -kernel $ELF)
    sleep 0.3; row qemu $i $1 $2
    kill -TERM $2; gone $2
  fi
  sleep 0.5; cat /tmp/bench-rows; : > /tmp/bench-rows
  i=$((i + 1))
done
echo BENCH-DONE
