#!/bin/sh
# Payload of bench/snapshot_compare.sh, run in the VM harness's L1 (nested KVM
# under QEMU TCG: the host has no /dev/kvm). For each guest size it measures,
# on the same tiny counting PVH guest (2 vCPUs):
#   vessel: snapshot create (PUT /snapshot/create, paused VM), restore through
#           the API (PUT /snapshot/load with resume_vm on a `vm create` VMM,
#           until the guest's first byte after the resume is in its serial
#           log) and through the CLI (`vm restore -d`, until that byte), the
#           memory file's allocated size (sparse) and its apparent size;
#   QEMU:   `migrate exec:cat>FILE` of the running VM (HMP, until completed;
#           the guest is stopped at the end of the pass, as for savevm),
#           and `-incoming "exec:cat FILE"` until the guest's first byte after
#           the resume in its serial file.
# First touch (first run of each size): a touchN guest (make_tiny_pvh.py:
# 64 MiB written, then passes reading every page of its RAM, 'T' .. 'D') is
# snapshotted between passes and restored (vessel: `vm restore -d`, memory
# mapped MAP_PRIVATE from the file; QEMU: -incoming, RAM read in up front);
# the time of its first full pass after the restore and of the next one.
# Then clone density: N clones of the 512 MiB snapshot, their total PSS.
# Prints "BENCH name size_mib value" lines.
R=/tmp/broot; K=/extra/bench-snap/count.elf; Q=/extra/bench-snap/qemu
RUNS=${BENCH_RUNS:-3}
T=/extra/bench-snap/snapshot_timer   # bench/snapshot_timer.c
now() { $T now; }
ms() { echo "$1 $2" | awk '{printf "%.2f", ($2 - $1) / 1000}'; }
api() { curl -s -o /dev/null -w '%{http_code}' --unix-socket $R/vm/$1/api.sock -X PUT "http://localhost$2" -d "$3"; }
qemu() { $Q/lib/ld-linux-x86-64.so.2 --library-path $Q/lib $Q/qemu-system-x86_64 -L $Q/share "$@"; }
# wait_byte FILE CHAR SECONDS: until FILE holds CHAR.
wait_byte() { i=0; while [ $i -lt $(($3 * 10)) ]; do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
first_touch() {
  mib=$1; TK=/extra/bench-snap/touch$mib.elf; S=/tmp/bt-$mib; rm -rf $S
  vessel --root $R vm run -d --name tsrc --kernel $TK --cpus 2 --memory ${mib}M >/dev/null || echo "BENCH-ERROR touch run"
  wait_byte $R/vm/tsrc/serial.log D 300 || echo "BENCH-ERROR touch guest silent"
  vessel --root $R vm pause tsrc
  vessel --root $R vm snapshot tsrc $S || echo "BENCH-ERROR touch snapshot"
  vessel --root $R vm kill tsrc >/dev/null; vessel --root $R vm delete tsrc
  $T passes $R/vm/trs/serial.log > /tmp/tp.out &
  tp=$!
  vessel --root $R vm restore $S -d --name trs >/dev/null || echo "BENCH-ERROR touch restore"
  wait $tp
  set -- $(cat /tmp/tp.out)
  echo "BENCH vessel_first_touch_ms $mib $1"
  echo "BENCH vessel_warm_pass_ms $mib $2"
  vessel --root $R vm kill trs >/dev/null; vessel --root $R vm delete trs; rm -rf $S
  rm -f /tmp/qm.in /tmp/qm.out /tmp/q.ser /tmp/q.mig; mkfifo /tmp/qm.in /tmp/qm.out
  qemu -accel kvm -cpu host -M microvm,x-option-roms=off,rtc=on -m ${mib}M -smp 2 -nodefaults -no-user-config \
    -display none -serial file:/tmp/q.ser -monitor pipe:/tmp/qm -kernel $TK &
  qpid=$!
  exec 7>/tmp/qm.in 8</tmp/qm.out
  wait_byte /tmp/q.ser D 300 || echo "BENCH-ERROR qemu touch guest silent"
  echo "migrate exec:cat>/tmp/q.mig" >&7; echo "info migrate" >&7
  while read -t 300 -r line <&8; do
    case "$line" in *"Migration status: completed"*) break ;; *"status: failed"*) echo "BENCH-ERROR qemu migrate"; break ;; esac
  done
  kill -9 $qpid; exec 7>&- 8<&-; wait $qpid 2>/dev/null
  rm -f /tmp/q.ser
  $T passes /tmp/q.ser > /tmp/tp.out &
  tp=$!
  qemu -accel kvm -cpu host -M microvm,x-option-roms=off,rtc=on -m ${mib}M -smp 2 -nodefaults -no-user-config \
    -display none -serial file:/tmp/q.ser -kernel $TK -incoming "exec:cat /tmp/q.mig" </dev/null >/dev/null 2>&1 &
  qpid=$!
  wait $tp
  set -- $(cat /tmp/tp.out)
  echo "BENCH qemu_first_touch_ms $mib $1"
  echo "BENCH qemu_warm_pass_ms $mib $2"
  kill -9 $qpid; wait $qpid 2>/dev/null; rm -f /tmp/q.mig /tmp/q.ser
}
for mib in 128 512 2048; do
  first_touch $mib
  for run in $(seq $RUNS); do
    echo "BENCH-PROGRESS $mib MiB run $run"
    S=/tmp/bs-$mib; rm -rf $S $R; mkdir -p $S
    vessel --root $R vm run -d --name src --kernel $K --cpus 2 --memory ${mib}M >/dev/null || echo "BENCH-ERROR run"
    sleep 1
    vessel --root $R vm pause src
    t0=$(now); c=$(api src /snapshot/create "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"$S/state\",\"mem_file_path\":\"$S/memory\"}"); t1=$(now)
    [ "$c" = 204 ] || echo "BENCH-ERROR snapshot/create $c"
    echo "BENCH vessel_snapshot_create_ms $mib $(ms $t0 $t1)"
    echo "BENCH vessel_memory_file_allocated_kib $mib $(du -k $S/memory | cut -f1)"
    echo "BENCH memory_file_apparent_kib $mib $(( $(stat -c %s $S/memory) / 1024 ))"
    vessel --root $R vm kill src >/dev/null; vessel --root $R vm delete src
    vessel --root $R vm create --name api >/dev/null
    set -- $($T run $R/vm/api/serial.log curl -s -o /dev/null --unix-socket $R/vm/api/api.sock -X PUT \
      http://localhost/snapshot/load -d "{\"snapshot_path\":\"$S/state\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"$S/memory\"},\"resume_vm\":true}")
    echo "BENCH vessel_api_load_ms $mib $1"
    echo "BENCH vessel_api_restore_to_running_ms $mib $2"
    vessel --root $R vm kill api >/dev/null; vessel --root $R vm delete api
    set -- $($T run $R/vm/cli/serial.log vessel --root $R vm restore $S -d --name cli)
    echo "BENCH vessel_cli_restore_ms $mib $1"
    echo "BENCH vessel_cli_restore_to_running_ms $mib $2"
    vessel --root $R vm kill cli >/dev/null; vessel --root $R vm delete cli
    # QEMU: the same guest, stopped, migrated to a file; then restored from it.
    rm -f /tmp/qm.in /tmp/qm.out /tmp/q.ser /tmp/q.mig; mkfifo /tmp/qm.in /tmp/qm.out
    qemu -accel kvm -cpu host -M microvm,x-option-roms=off,rtc=on -m ${mib}M -smp 2 -nodefaults -no-user-config \
      -display none -serial file:/tmp/q.ser -monitor pipe:/tmp/qm -kernel $K \
      -device isa-debug-exit,iobase=0x600 &
    qpid=$!
    exec 7>/tmp/qm.in 8</tmp/qm.out
    sleep 1
    # Migrated running (QEMU stops it at the end of the pass): a destination
    # of a stopped source stays paused, and the clock runs until it runs.
    t0=$(now); echo "migrate exec:cat>/tmp/q.mig" >&7; echo "info migrate" >&7
    while read -t 300 -r line <&8; do
      case "$line" in *"Migration status: completed"*) break ;; *"status: failed"*) echo "BENCH-ERROR qemu migrate"; break ;; esac
    done
    t1=$(now)
    echo "BENCH qemu_snapshot_create_ms $mib $(ms $t0 $t1)"
    echo "BENCH qemu_state_file_kib $mib $(du -k /tmp/q.mig | cut -f1)"
    kill -9 $qpid; exec 7>&- 8<&-; wait $qpid 2>/dev/null
    rm -f /tmp/q.ser
    # QEMU writes nothing to the serial file until the guest runs again.
    set -- $($T spawn /tmp/q.ser $Q/lib/ld-linux-x86-64.so.2 --library-path $Q/lib $Q/qemu-system-x86_64 -L $Q/share \
      -accel kvm -cpu host -M microvm,x-option-roms=off,rtc=on -m ${mib}M -smp 2 -nodefaults -no-user-config \
      -display none -serial file:/tmp/q.ser -kernel $K -device isa-debug-exit,iobase=0x600 \
      -incoming "exec:cat /tmp/q.mig" </dev/null)
    echo "BENCH qemu_restore_to_running_ms $mib $2"
    kill -9 $3 2>/dev/null; sleep 0.5
    rm -f /tmp/q.mig
  done
done
# Clone density: N clones of the 512 MiB snapshot, running, their VMMs' PSS.
N=${BENCH_CLONES:-20}
S=/tmp/bs-512
free_before=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
vessel --root $R vm clone $S --count $N --name dn --serial none >/dev/null || echo "BENCH-ERROR clone"
sleep 2
pss=0
for p in $(sed -n "s/.*\"pid\": *\([0-9]*\).*/\1/p" $R/vm/dn-*/vmm.json); do
  v=$(awk '/^Pss:/ {print $2}' /proc/$p/smaps_rollup 2>/dev/null); pss=$((pss + ${v:-0}))
done
free_after=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
echo "BENCH clones_running 512 $(ls -d $R/vm/dn-* | wc -l)"
echo "BENCH clone_pss_kib_each 512 $((pss / N))"
echo "BENCH clone_memavailable_drop_kib_each 512 $(( (free_before - free_after) / N ))"
for i in $(seq 0 $((N - 1))); do vessel --root $R vm kill dn-$i >/dev/null 2>&1; vessel --root $R vm delete dn-$i >/dev/null 2>&1; done
echo BENCH-DONE
