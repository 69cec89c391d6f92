#!/bin/sh
# Payload of ctest vmharness.vmm_migration, run as root in L1 (QEMU TCG with
# nested SVM KVM): Debian's kernel with a busybox initramfs whose payload
# dirties memory and prints "TICK n" is live-migrated between vessel VMMs:
# over a unix socket, over TCP, over TCP by post-copy, and locally with the memfd handed over, then
# `vm upgrade` moves it to a new VMM process under the same id, twice. Each
# time the source VMM exits ("migrated"), the destination runs, and the ticks
# continue without a gap or a repeat across the two consoles (checked on the
# two files joined: the pause may land inside a line, about 1 pause in 30 in
# the harness, and the line's two parts are in different files). Faults: the destination killed mid-
# stream, a port where nothing listens (the source runs on), a corrupted
# stream (the receiver refuses). Then a guest that writes its disk moves with
# --copy-disks (its image file copied). Prints "VESSEL-CHECK name PASS|FAIL".
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
# The numbers of the complete "TICK n" lines of the console on stdin (\r
# dropped; a last line without its newline, still being written or cut by a
# pause, is not complete).
tick_lines() { { tr -d '\r'; echo X; } | grep -o 'TICK [0-9][0-9]*$' | cut -d' ' -f2; }
last_tick() { tick_lines < "$(log $1)" 2>/dev/null | tail -1; }
first_tick() { tick_lines < "$(log $1)" 2>/dev/null | head -1; }
# The ticks of files $@ joined as one byte stream (a migrated guest's console
# is split between its VMMs' logs, and the pause may cut a line in two):
# "FIRST LAST" when every tick follows the one before, else "gap A B".
ticks_joined() {
  cat "$@" 2>/dev/null | tick_lines |
    awk 'NR == 1 {f = $1} NR > 1 && $1 != p + 1 {print "gap", p, $1; bad = 1; exit} {p = $1} END {if (!bad && NR) print f, p}'
}
# The ticks go on across the hand-over from console file $1 to $2: no tick
# lost or repeated in the joined stream, which goes past $1's last tick $3.
continues() {
  j=$(ticks_joined "$1" "$2")
  echo "ticks joined: ${j:-none}"
  case "$j" in gap* | '') return 1 ;; esac
  [ -n "$3" ] && [ "${j#* }" -gt "$3" ]
}
# What a failed hand-over check needs to be understood: the state directory,
# the ends of the console files either side of the hand-over.
console_diag() {
  echo "--- diagnostics: $1 -> $2"
  ls -la "$(dirname "$1")" "$(dirname "$2")" 2>&1
  for f in "$1" "$2"; do echo "$f: $(wc -c < "$f" 2>&1) bytes"; done
  echo "tail of $1:"; tail -c 160 "$1" 2>&1 | od -c | tail -n 12
  echo "head of $2:"; head -c 160 "$2" 2>&1 | od -c | head -n 12
  echo "--- end of diagnostics"
}
state() { $V --root $R vm state "$1" 2>/dev/null; }
# Waits for a tick in $1's log after tick number $2.
ticks_after() { i=0; while [ $i -lt $(($3 * 10)) ]; do t=$(last_tick $1); [ -n "$t" ] && [ "$t" -gt "$2" ] && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }

# migrate FROM TO URL [flags]: receive on URL as TO (with $RECV_ARGS), migrate, check the hand-over.
migrate() {
  from=$1; to=$2; url=$3; shift 3
  $V --root $R vm receive -d --name $to --listen $url ${RECV_ARGS:-} || { mark "receive-$to" FAIL; return 1; }
  out=$($V --root $R vm migrate $from --to $url "$@" 2>&1); rc=$?
  echo "$out" | tail -3
  pf "migrate-$to-exit-0" $rc
  state $from | grep -q '"exit_reason": *"migrated"'; pf "migrate-$to-source-exited-migrated" $?
  state $to | grep -q '"status": *"running"'; pf "migrate-$to-destination-running" $?
  src_last=$(last_tick $from)
  ticks_after $to "${src_last:-0}" 60; pf "migrate-$to-guest-keeps-running" $?
  dst_first=$(first_tick $to)
  echo "last tick on $from: $src_last, first on $to: $dst_first"
  continues "$(log $from)" "$(log $to)" "$src_last"; rc=$?
  pf "migrate-$to-no-tick-lost-or-repeated" $rc
  [ $rc = 0 ] || { echo "$out"; console_diag "$(log $from)" "$(log $to)"; }
  echo "VESSEL-MEASURE migrate-$to $(echo "$out" | grep '^migrated' | sed 's/^migrated [^ ]* //')"
}

$V --root $R vm run -d --name a --kernel "$K" --initrd $D/guest.cpio --memory 256M --cpus 1 \
  --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init loglevel=4" || mark boot FAIL
wait_for a "TICK 3" 180; pf guest-ticks $?

migrate a b unix:/tmp/mig-b.sock
migrate b c tcp:127.0.0.1:47113 --max-downtime 100
# Post-copy: one round, then the guest runs on p at once and its pages follow.
migrate c p tcp:127.0.0.1:47115 --postcopy --max-rounds 1 --max-downtime 1
echo "$out" | grep -q "post-copy of"; pf migrate-p-was-post-copy $?
migrate p d unix:/tmp/mig-d.sock --local

# vm upgrade: d moves to a new VMM process under the same id, its RAM memfd
# handed over; twice (the second time from a VMM that an upgrade started).
# upgrade CHECK-PREFIX
upgrade() {
  oldpid=$(state d | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
  out=$($V --root $R vm upgrade d 2>&1); rc=$?
  echo "$out"
  pf $1-exit-0 $rc
  newpid=$(state d | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
  echo "VMM pid of d: $oldpid before the upgrade, $newpid after"
  [ -n "$newpid" ] && [ "$newpid" != "$oldpid" ] && state d | grep -q '"status": *"running"'
  pf $1-new-vmm-runs-the-vm $?
  state d | grep -q "\"api_sock\": *\"$R/vm/d/api.sock\""; pf $1-state-names-the-renamed-socket $?
  [ ! -e $R/vm/d.upgrade ] && [ ! -e $R/vm/d.replaced ] && [ ! -e $R/vm/d/upgrade.sock ] && ! kill -0 "$oldpid" 2>/dev/null
  pf $1-old-vmm-gone-nothing-left $?
  before=$(tick_lines < $R/vm/d/serial.log.1 2>/dev/null | tail -1)
  ticks_after d "${before:-0}" 60; running=$?
  pf $1-guest-keeps-running $running
  if [ $running != 0 ]; then
    # Silent guest: did it write to COM1 at all (serial_bytes), is its vCPU exiting (counters), is
    # a THR-empty interrupt pending in COM1 that the IOAPIC does not pass on (stats.interrupts)?
    for i in 1 2; do $V --root $R vm state d --stats 2>&1 | tr -s ' \n' ' '; echo; sleep 2; done
    # A byte typed on its console raises COM1's receive interrupt, whose handler also sends what
    # the guest's 8250 driver holds: ticks now mean the guest ran on and only lost its transmit
    # interrupt; none mean it is stuck.
    (echo; sleep 4) | $V --root $R vm console d >/dev/null 2>&1 &
    cpid=$!
    sleep 5; kill $cpid 2>/dev/null; wait $cpid 2>/dev/null
    echo "after a byte on its console: $(wc -c < $R/vm/d/serial.log) bytes in serial.log, last tick $(last_tick d)"
    $V --root $R vm state d --stats 2>&1 | tr -s ' \n' ' '; echo
  fi
  after=$(first_tick d)
  echo "last tick before the upgrade: $before, first after: $after"
  continues $R/vm/d/serial.log.1 $R/vm/d/serial.log "$before"; rc=$?
  pf $1-no-tick-lost-or-repeated $rc
  [ $rc = 0 ] || console_diag $R/vm/d/serial.log.1 $R/vm/d/serial.log
  echo "VESSEL-MEASURE $1-d $(echo "$out" | grep '^upgraded' | sed 's/^upgraded [^ ]* //')"
  return $running
}
if upgrade upgrade; then
  upgrade upgrade-again
else
  echo "the guest does not run after the first upgrade: no second one"
  mark upgrade-again FAIL
fi

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

# Post-copy whose source dies mid-way (its background pages capped at
# 100 kB/s keep it in post-copy):
# the destination stops its incomplete guest and says why; delete leaves nothing.
$V --root $R vm receive -d --name g --listen tcp:127.0.0.1:47116 || mark receive-g FAIL
dpid=$(state d | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
gpid=$(state g | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -1)
$V --root $R vm migrate d --to tcp:127.0.0.1:47116 --postcopy --max-rounds 1 --max-downtime 1 \
  --postcopy-bandwidth 100000 > /tmp/mig-g.out 2>&1 &
mig=$!
i=0; while [ $i -lt 600 ] && ! state d | grep -q '"phase": *"postcopy"'; do sleep 0.1; i=$((i + 1)); done
state d | grep -q '"phase": *"postcopy"'; pf postcopy-source-dies-reached-post-copy $?
sleep 1
[ -n "$dpid" ] && kill -9 "$dpid"
wait $mig
i=0; while [ $i -lt 300 ] && ! state g | grep -q '"exit_reason": *"error"'; do sleep 0.1; i=$((i + 1)); done
state g | tee /tmp/g.state | grep -q "post-copy failed after the guest started here"
pf postcopy-source-dies-destination-stops-and-says-why $?
grep exit_detail /tmp/g.state
# (tearing a VM down takes seconds in L1: up to 30 s)
i=0; while [ $i -lt 300 ] && kill -0 "$gpid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
echo "destination VMM $gpid gone after $i tenths of a second"
[ "${gpid:-0}" -gt 0 ] && ! kill -0 "$gpid" 2>/dev/null; pf postcopy-source-dies-destination-vmm-exits $?
$V --root $R vm delete g >/dev/null 2>&1 && [ ! -e $R/vm/g ]; pf postcopy-source-dies-delete-leaves-nothing $?

# --copy-disks: a guest writing its disk (guest_payload.sh: block n each tick,
# read back every 10) moves over TCP with its raw image file copied into the
# receiver's --disk-dir; on the destination it reads back every block, those
# written before the migration too. A receiver without --disk-dir refuses such
# a migration (the guest runs on at the source, no file is created).
mkdir -p /tmp/src-disks /tmp/dst-disks
dd if=/dev/zero of=/tmp/src-disks/h.raw bs=1M count=0 seek=64 2>/dev/null
$V --root $R vm run -d --name h --kernel "$K" --initrd $D/guest.cpio --memory 256M --cpus 1 \
  --disk /tmp/src-disks/h.raw --cmdline "console=ttyS0 reboot=k panic=-1 rdinit=/init loglevel=4" || mark boot-h FAIL
wait_for h "DISK-OK 10" 240; pf disk-guest-reads-its-blocks $?
$V --root $R vm receive -d --name n --listen tcp:127.0.0.1:47117 || mark receive-n FAIL
out=$($V --root $R vm migrate h --to tcp:127.0.0.1:47117 --copy-disks 2>&1); rc=$?
echo "$out" | tail -2
[ $rc != 0 ] && echo "$out" | grep -q "disk-dir"; pf copy-disks-without-disk-dir-refused $?
t=$(last_tick h)
ticks_after h "${t:-0}" 30; pf copy-disks-refused-guest-runs-on $?
sleep 1
state n | grep -q 'exit_reason": *"error' && state n | grep -q 'no disk directory'; pf copy-disks-refusing-receiver-says-why $?
RECV_ARGS="--disk-dir /tmp/dst-disks" migrate h i tcp:127.0.0.1:47118 --copy-disks
echo "$out" | grep -q "disks copied"; pf copy-disks-reported $?
state i | grep -q '"/tmp/dst-disks/h.raw"'; pf copy-disks-destination-uses-the-copy $?
src_last=$(last_tick h)
# The first read-back on the destination of more blocks than the source wrote.
n=$(( (${src_last:-0} / 10 + 1) * 10 ))
wait_for i "DISK-OK $n" 120; rc=$?
pf copy-disks-guest-reads-every-block-on-the-destination $rc
[ $rc = 0 ] || { echo "source's last tick $src_last"; grep -a 'DISK-' "$(log h)" "$(log i)" | tail -5; }
! grep -aq 'DISK-BAD' "$(log i)"; pf copy-disks-no-bad-block $?
$V --root $R vm kill i >/dev/null 2>&1; sleep 1
for v in h i n; do $V --root $R vm delete $v >/dev/null 2>&1; done
[ -f /tmp/dst-disks/h.raw ]; pf copy-disks-the-copy-stays-after-delete $?

for v in a b c p e f; do $V --root $R vm delete $v >/dev/null 2>&1; done
$V --root $R vm kill d >/dev/null 2>&1; sleep 1; $V --root $R vm delete d >/dev/null 2>&1
ls $R/vm
echo ALL-DONE
