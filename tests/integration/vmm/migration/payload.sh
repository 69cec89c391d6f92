#!/bin/sh
# Payload of ctest vmharness.vmm_migration, run as root in L1 (QEMU TCG with
# nested SVM KVM): Debian's kernel with a busybox initramfs whose payload
# dirties memory and prints "TICK n" is live-migrated between vessel VMMs:
# over a unix socket, over TCP, and locally with the memfd handed over, then
# `vm upgrade` moves it to a new VMM process under the same id. Each
# time the source VMM exits ("migrated"), the destination runs, and the ticks
# continue without a gap or a repeat. Faults: the destination killed mid-
# stream, a port where nothing listens (the source runs on), a corrupted
# stream (the receiver refuses). Prints "VESSEL-CHECK name PASS|FAIL".
set -u
D=/extra/migration
K=$( [ -f /guest/vmlinuz ] && echo /guest/vmlinuz || echo /vmlinuz )
R=/tmp/mroot
V=vessel
mark() { echo "VESSEL-CHECK $1 $2"; }
pf() { if [ "$2" = 0 ]; then mark "$1" PASS; else mark "$1" FAIL; fi; }
log() { echo "$R/vm/$1/serial.log"; }
# Waits up to $3 s for text $2 in VM $1's serial log.
wait_for() { i=0; while [ $i -lt $(($3 * 10)) ]; do grep -q "$2" "$(log $1)" 2>/dev/null && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
last_tick() { grep -o 'TICK [0-9]*' "$(log $1)" 2>/dev/null | tail -1 | cut -d' ' -f2; }
first_tick() { grep -o 'TICK [0-9]*' "$(log $1)" 2>/dev/null | head -1 | cut -d' ' -f2; }
state() { $V --root $R vm state "$1" 2>/dev/null; }
# Waits for a tick in $1's log after tick number $2.
ticks_after() { i=0; while [ $i -lt $(($3 * 10)) ]; do t=$(last_tick $1); [ -n "$t" ] && [ "$t" -gt "$2" ] && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }

# migrate FROM TO URL [flags]: receive on URL as TO, migrate, check the hand-over.
migrate() {
  from=$1; to=$2; url=$3; shift 3
  $V --root $R vm receive -d --name $to --listen $url || { mark "receive-$to" FAIL; return 1; }
  out=$($V --root $R vm migrate $from --to $url "$@" 2>&1); rc=$?
  echo "$out" | tail -3
  pf "migrate-$to-exit-0" $rc
  state $from | grep -q '"exit_reason": *"migrated"'; pf "migrate-$to-source-exited-migrated" $?
  state $to | grep -q '"status": *"running"'; pf "migrate-$to-destination-running" $?
  src_last=$(last_tick $from)
  ticks_after $to "${src_last:-0}" 60; pf "migrate-$to-guest-keeps-running" $?
  dst_first=$(first_tick $to)
  echo "last tick on $from: $src_last, first on $to: $dst_first"
  [ -n "$src_last" ] && [ -n "$dst_first" ] && [ "$dst_first" = $((src_last + 1)) ]
  pf "migrate-$to-no-tick-lost-or-repeated" $?
  echo "VESSEL-MEASURE migrate-$to $(echo "$out" | grep '^migrated' | sed 's/^migrated [^ ]* //')"
}

$V --root $R vm run -d --name a --kernel "$K" --initrd $D/guest.cpio --memory 256M --cpus 1 \
  --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init loglevel=4" || mark boot FAIL
wait_for a "TICK 3" 180; pf guest-ticks $?

migrate a b unix:/tmp/mig-b.sock
migrate b c tcp:127.0.0.1:47113 --max-downtime 100
migrate c d unix:/tmp/mig-d.sock --local

# vm upgrade: d moves to a new VMM process under the same id, its RAM memfd handed over.
oldpid=$(state d | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
out=$($V --root $R vm upgrade d 2>&1); rc=$?
echo "$out"
pf upgrade-exit-0 $rc
newpid=$(state d | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
echo "VMM pid of d: $oldpid before the upgrade, $newpid after"
[ -n "$newpid" ] && [ "$newpid" != "$oldpid" ] && state d | grep -q '"status": *"running"'
pf upgrade-new-vmm-runs-the-vm $?
[ ! -e $R/vm/d.upgrade ] && ! kill -0 "$oldpid" 2>/dev/null; pf upgrade-old-vmm-gone-nothing-left $?
before=$(grep -o 'TICK [0-9]*' $R/vm/d/serial.log.1 2>/dev/null | tail -1 | cut -d' ' -f2)
ticks_after d "${before:-0}" 60; pf upgrade-guest-keeps-running $?
after=$(first_tick d)
echo "last tick before the upgrade: $before, first after: $after"
[ -n "$before" ] && [ -n "$after" ] && [ "$after" = $((before + 1)) ]; pf upgrade-no-tick-lost-or-repeated $?
echo "VESSEL-MEASURE upgrade-d $(echo "$out" | grep '^upgraded' | sed 's/^upgraded [^ ]* //')"

# Nothing listens: a clear error, the guest runs on in d.
t=$(last_tick d)
out=$($V --root $R vm migrate d --to tcp:127.0.0.1:47999 2>&1); rc=$?
echo "$out"
[ $rc != 0 ] && echo "$out" | grep -q "connect tcp:127.0.0.1:47999"; pf nothing-listens-clear-error $?
ticks_after d "${t:-0}" 30; pf nothing-listens-guest-runs-on $?

# The destination killed mid-stream (a slow link keeps it mid-stream): d resumes, says why.
$V --root $R vm receive -d --name e --listen unix:/tmp/mig-e.sock || mark receive-e FAIL
$V --root $R vm migrate d --to unix:/tmp/mig-e.sock --bandwidth 4000000 > /tmp/mig-e.out 2>&1 &
mig=$!
sleep 2
epid=$(state e | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
[ -n "$epid" ] && kill -9 "$epid"
wait $mig; rc=$?
cat /tmp/mig-e.out | tail -2
[ $rc != 0 ] && grep -q "failed (the VM runs on here)" /tmp/mig-e.out; pf killed-destination-clear-error $?
state d | grep -q '"status": *"running"'; pf killed-destination-source-running $?
t=$(last_tick d)
ticks_after d "${t:-0}" 30; pf killed-destination-guest-runs-on $?

# A corrupted stream: the receiver refuses it and exits with the reason.
$V --root $R vm receive -d --name f --listen tcp:127.0.0.1:47114 || mark receive-f FAIL
printf 'this is not a migration stream, not at all.....' | nc 127.0.0.1 47114 >/dev/null 2>&1
sleep 1
state f | tee /tmp/f.state | grep -q '"exit_reason": *"error"' && grep -q "unknown frame" /tmp/f.state
pf corrupted-stream-refused $?
cat /tmp/f.state | grep exit_detail

for v in a b c e f; do $V --root $R vm delete $v >/dev/null 2>&1; done
$V --root $R vm kill d >/dev/null 2>&1; sleep 1; $V --root $R vm delete d >/dev/null 2>&1
ls $R/vm
echo ALL-DONE
