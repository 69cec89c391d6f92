#!/bin/sh
# Payload of bench/migration_compare.sh, run in the VM harness's L1 (nested
# KVM under QEMU TCG) where the host has no /dev/kvm, else on the host itself
# (tier 1). The same 512 MiB tiny guest
# (bench/migration_guest.cc: a counter written into random pages, paced by
# the TSC; idle = verifying only) is live-migrated over TCP on loopback:
#   vessel: `vm receive -d --listen tcp:` + `vm migrate --to tcp:` (the VMM's
#           downtime = pause to the destination's RUNNING, its total time);
#   QEMU:   `-incoming tcp:` + HMP `migrate -d tcp:`, `info migrate` until
#           completed (its "downtime" and "total time");
# both with their default downtime budget (300 ms), no bandwidth cap and
# auto-converge (vessel's default; QEMU's capability turned on), for idle and
# 10, 100, 1000 MiB/s; then `vm upgrade` (memfd hand-over) of the idle guest.
# Also the guest-observed downtime of both (bench/migration_stamp.c: the
# source guest's last output line to the destination's first; it includes up
# to one report interval of the guest, 100 ms).
# A run counts only if the destination's guest then reports its pages
# adding up ("K"). A migration that has not completed after LIMIT seconds is
# cancelled and reported (BENCH-ERROR). Prints "BENCH metric rate value" lines.
# Environment: BENCH_RUNS (2), BENCH_RATES ("0 10 100 1000"), BENCH_VMMS
# ("vessel qemu"), BENCH_LIMIT (240 s), BENCH_SHMEM_THP (L1's shmem_enabled; unset: unchanged),
# BENCH_POSTCOPY (set: vessel `vm migrate --postcopy`, which switches where
# pre-copy does not converge; QEMU postcopy-ram on both sides and
# migrate_start_postcopy right after migrate, so it switches after its first pass).
# On the host itself (tier 1, bench/migration_compare.sh where /dev/kvm exists):
# BENCH_DIR (the built helpers and QEMU), BENCH_WORK (a scratch directory).
B=${BENCH_DIR:-/extra/bench-mig}; Q=$B/qemu; W=${BENCH_WORK:-/tmp}; R=$W/mroot
# Huge pages: QEMU's anonymous RAM gets them from "enabled" (always here) and
# its MADV_HUGEPAGE; vessel's RAM from its own huge=within_size tmpfs, whatever
# shmem_enabled says (Debian's never, left as it is unless BENCH_SHMEM_THP is set).
T=/sys/kernel/mm/transparent_hugepage
[ -z "${BENCH_SHMEM_THP:-}" ] || echo "$BENCH_SHMEM_THP" >$T/shmem_enabled || echo "BENCH-ERROR cannot set $T/shmem_enabled"
echo "BENCH-HOST thp $(sed -n 's/.*\[\(.*\)\].*/\1/p' $T/enabled) shmem_thp $(sed -n 's/.*\[\(.*\)\].*/\1/p' $T/shmem_enabled)"
RUNS=${BENCH_RUNS:-2}; LIMIT=${BENCH_LIMIT:-240}; PC=${BENCH_POSTCOPY:-}
[ -z "$PC" ] || echo "BENCH-INFO post-copy runs" 
qemu() { $Q/lib/ld-linux-x86-64.so.2 --library-path $Q/lib $Q/qemu-system-x86_64 -L $Q/share "$@"; }
qargs() { echo "-accel kvm -cpu host -M microvm,x-option-roms=off,rtc=on -m 512M -smp 1 -nodefaults -no-user-config -display none"; }
# Waits up to $3 s for $2 "C ... K" reports in file $1.
reports() { i=0; while [ $i -lt $(($3 * 10)) ]; do [ "$(grep -c ' K$' "$1" 2>/dev/null)" -ge "$2" ] && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
# The VMM's own measure in the last line ("migrated|upgraded ID ...: downtime X ms, total Y ms").
num() { echo "$1" | grep -E '^(migrated|upgraded) ' | sed -n "s/.* $2 \([0-9.e+-]*\) ms.*/\1/p" | head -1; }
# Guest-observed downtime: starts the stamper on source log $1, destination log $2.
stamp() { $B/migration_stamp "$1" "$2" $((LIMIT + 60)) >$W/stamp.out 2>&1 & stamp_pid=$!; }
stamped() { wait $stamp_pid 2>/dev/null && [ -n "$(cat $W/stamp.out)" ] && echo "BENCH $1_guest_downtime_ms $2 $(cat $W/stamp.out)"; }
port=47300
for rate in ${BENCH_RATES:-0 10 100 1000}; do
  khz=$($B/migration_guest $W/g$rate.elf $rate)
  echo "BENCH-INFO guest ${rate} MiB/s, TSC $khz kHz"
  for run in $(seq $RUNS); do
   for vmm in ${BENCH_VMMS:-vessel qemu}; do
    echo "BENCH-PROGRESS $vmm $rate MiB/s run $run $(date +%T)"
    port=$((port + 1))
    if [ $vmm = vessel ]; then
      rm -rf $R
      vessel --root $R vm run -d --name s --kernel $W/g$rate.elf --memory 512M --cpus 1 || echo "BENCH-ERROR run"
      reports $R/vm/s/serial.log 2 120 || echo "BENCH-ERROR vessel guest does not report"
      vessel --root $R vm receive -d --name d --listen tcp:127.0.0.1:$port || echo "BENCH-ERROR receive"
      stamp $R/vm/s/serial.log $R/vm/d/serial.log
      out=$(timeout $LIMIT vessel --root $R vm migrate s --to tcp:127.0.0.1:$port ${PC:+--postcopy} 2>$W/progress.txt); echo "$out"
      # The last progress line of each round (and phase).
      awk '{k = $1 " " $3} k != last && prev != "" {print "BENCH-INFO vessel " prev} {prev = $0; last = k} END {print "BENCH-INFO vessel " prev}' $W/progress.txt
      grep -h "received\|migration\|TSC" $R/vm/d/vmm.log 2>/dev/null | tail -3 | sed 's/^/BENCH-INFO destination: /'
      n=$(grep -c ' K$' $R/vm/d/serial.log 2>/dev/null)
      if [ -n "$out" ] && reports $R/vm/d/serial.log $((${n:-0} + 2)) 120 && ! grep -q ' X$' $R/vm/d/serial.log; then
        echo "BENCH vessel_downtime_ms $rate $(num "$out" downtime)"
        echo "BENCH vessel_total_ms $rate $(num "$out" total)"
        stamped vessel $rate
      else echo "BENCH-ERROR vessel $rate MiB/s: migration did not complete in ${LIMIT}s or the destination guest does not verify"
        tail -3 $R/vm/s/serial.log $R/vm/d/serial.log; vessel --root $R vm state --stats s 2>&1 | head -40; tail -5 $R/vm/s/vmm.log $R/vm/d/vmm.log 2>/dev/null; fi
      kill $stamp_pid 2>/dev/null
      if [ $rate = 0 ] && [ -z "$PC" ]; then
        out=$(vessel --root $R vm upgrade d 2>&1); echo "$out"
        n=$(grep -c ' K$' $R/vm/d/serial.log 2>/dev/null)
        if reports $R/vm/d/serial.log $((${n:-0} + 2)) 60; then
          echo "BENCH vessel_upgrade_downtime_ms $rate $(num "$out" downtime)"
          echo "BENCH vessel_upgrade_total_ms $rate $(num "$out" total)"
        else echo "BENCH-ERROR upgraded guest does not verify"; fi
      fi
      for v in s d; do vessel --root $R vm kill $v >/dev/null 2>&1; done; sleep 0.5
      for v in s d; do vessel --root $R vm delete --force $v >/dev/null 2>&1; done
      continue
    fi
    # QEMU: the same guest and link.
    rm -f $W/qs.ser $W/qd.ser $W/qs.in $W/qs.out $W/qd.in $W/qd.out
    mkfifo $W/qs.in $W/qs.out $W/qd.in $W/qd.out
    qemu $(qargs) -serial file:$W/qs.ser -monitor pipe:$W/qs -kernel $W/g$rate.elf &
    qs=$!
    qemu $(qargs) -serial file:$W/qd.ser -monitor pipe:$W/qd -kernel $W/g$rate.elf -incoming tcp:127.0.0.1:$port &
    qd=$!
    exec 7>$W/qs.in 8<$W/qs.out 5>$W/qd.in 6<$W/qd.out
    reports $W/qs.ser 2 120 || echo "BENCH-ERROR qemu guest does not report"
    echo "migrate_set_parameter max-bandwidth 100G" >&7   # vessel's link is not capped either
    if [ -n "$PC" ]; then
      echo "migrate_set_capability postcopy-ram on" >&7; echo "migrate_set_capability postcopy-ram on" >&5
    else
      echo "migrate_set_capability auto-converge on" >&7    # vessel throttles by default too
    fi
    stamp $W/qs.ser $W/qd.ser
    echo "migrate -d tcp:127.0.0.1:$port" >&7
    [ -z "$PC" ] || echo "migrate_start_postcopy" >&7
    st=""; tt=""; dt=""; t0=$(date +%s)
    while [ -z "$st" ]; do
      sleep 0.2
      if [ $(($(date +%s) - t0)) -gt $LIMIT ]; then echo "migrate_cancel" >&7; st=timeout; break; fi
      echo "info migrate" >&7
      while read -t 1 -r line <&8; do
        case "$line" in
          *"Migration status: completed"*) st=ok ;;
          *"Migration status: failed"*) st=failed ;;
          "total time:"*) tt=$(echo "$line" | sed 's/[^0-9]*\([0-9]*\).*/\1/') ;;
          "downtime:"*) dt=$(echo "$line" | sed 's/[^0-9]*\([0-9]*\).*/\1/'); break ;;
          "expected downtime:"*) last_q=$line; break ;;
        esac
      done
    done
    n=$(grep -c ' K$' $W/qd.ser 2>/dev/null)
    if [ "$st" = ok ] && reports $W/qd.ser $((${n:-0} + 2)) 120 && ! grep -q ' X$' $W/qd.ser; then
      echo "BENCH qemu_downtime_ms $rate $dt"
      echo "BENCH qemu_total_ms $rate $tt"
      stamped qemu $rate
    else echo "BENCH-ERROR qemu $rate MiB/s: migration $st (${LIMIT}s limit; last: $last_q), destination: $(tail -1 $W/qd.ser)"; fi
    kill $stamp_pid 2>/dev/null
    kill -9 $qs $qd 2>/dev/null; exec 7>&- 8<&- 5>&- 6<&-; wait $qs $qd 2>/dev/null
   done
  done
done
echo BENCH-DONE
