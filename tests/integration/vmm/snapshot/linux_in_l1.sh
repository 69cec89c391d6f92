# Sourced by cli_in_l1.sh (vmharness.vmm_snapshot_cli) when /extra/linux
# exists (prepare_linux.sh): a Linux guest (Debian's generic kernel, busybox,
# linux_guest_init.sh) with a virtio-blk disk and a virtio-net NIC whose loop
# counts, writes the count to the disk and pings L1. It is paused,
# snapshotted and killed; two clones run side by side (each its own tap, a
# qcow2 overlay over the disk, a derived MAC, a new VM generation ID: the
# guest's RNG reseeds), then stop cleanly and their overlays fsck clean; the
# snapshot is restored in place in a new VMM (the count continues, the ping
# resumes, the disk fscks clean after shutdown); a restore against the disk
# it changed is refused. Then the same guest is live-migrated to another VMM
# (its NIC on a tap of that VMM's own) and `vm upgrade`d, with a TCP
# connection from L1 to its echo server kept busy throughout: the connection
# survives both, every line comes back in order, the count goes on, the disk
# fscks clean; L1 reaches the guest's vsock echo server through the VMM's
# socket before, after the migration (the receiver's own socket) and after the
# upgrade (the same socket, handed over), and no socket file is left. Prints
# VESSEL-CHECK lines.
L=/extra/linux; W=/tmp/lx; SL=/tmp/snap-linux
[ -e /dev/net/tun ] || insmod /extra/snapshot-linux/tun.ko 2>/dev/null
[ -e /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }
mkdir -p $W/www; cp $L/disk.img $W/disk.img
mark() { echo "VESSEL-CHECK snapshot-linux-$1 $2"; }
pf() { if [ "$2" = 0 ]; then mark "$1" PASS; else mark "$1" FAIL; fi; }
log() { cat $R/vm/$1/serial.log 2>/dev/null | tr -d '\r'; }
# wait_for VM REGEX SECONDS: until the VM's serial log has a line matching REGEX.
wait_for() { i=0; while [ $i -lt $(($3 * 2)) ]; do log $1 | grep -qE "$2" && return 0; sleep 0.5; i=$((i + 1)); done; return 1; }
# tapup TAP VM (background): once vessel opened TAP, give L1 10.3.0.1 on it and a
# route to the guest's IP (10.3.<MAC byte 5>.<MAC byte 6>, from its last NEWGEN/GUEST-READY line).
tapup() {
  ( for i in $(seq 600); do ip link show $1 >/dev/null 2>&1 && break; sleep 0.1; done
    ip addr add 10.3.0.1/32 dev $1; ip link set $1 up
    for i in $(seq 240); do
      mac=$(log $2 | grep -E '^(NEWGEN|GUEST-READY)' | tail -1 | sed -n 's/.*mac=\([0-9a-f:]*\).*/\1/p')
      if [ -n "$mac" ]; then
        ip route replace 10.3.$((0x$(echo $mac | cut -d: -f5))).$((0x$(echo $mac | cut -d: -f6)))/32 dev $1
        [ "$mac" = "$(cat /tmp/lx.mac.$1 2>/dev/null)" ] || echo $mac > /tmp/lx.mac.$1
        log $2 | grep -q '^NEWGEN' && break
      fi
      sleep 0.5
    done ) &
}
# Milliseconds since boot (/proc/uptime: 10 ms steps; busybox date has no %N).
now() { read -r u _ < /proc/uptime; echo $(( ${u%.*} * 1000 + (1${u#*.} - 100) * 10 )); }
lastn() { log $1 | sed -n 's/^TICK \([0-9]*\) .*/\1/p' | tail -1; }
firstn() { log $1 | sed -n 's/^TICK \([0-9]*\) .*/\1/p' | head -1; }
field() { log $1 | grep "^$2" | tail -1 | sed -n "s/.* $3=\([^ ]*\).*/\1/p"; }
# What is known of VM $1 that did not get on: its state, VMM log and console.
why() {
  echo "VM $1: $(vessel --root $R vm state $1 2>&1 | grep -E '"(status|exit_reason|exit_detail|pid)"' | tr -s ' \n' ' ')"
  echo "--- vmm.log of $1"; tail -n 10 $R/vm/$1/vmm.log 2>&1
  echo "--- console of $1"; log $1 | tail -n 10
  echo "--- counters of $1 (vm state --stats, twice 2 s apart)"; vessel --root $R vm state $1 --stats 2>&1 | tail -n 25; sleep 2
  vessel --root $R vm state $1 --stats 2>&1 | tail -n 25
}
httpd -p 8080 -h $W/www &
httpd_pid=$!
cmdline="console=ttyS0 reboot=k panic=-1 rdinit=/init loglevel=4"
start_la() {
  tapup vtap1 la
  vessel --root $R vm run -d --name la --kernel $L/vmlinuz --initrd $L/inner.cpio.gz --memory 256M --cpus 1 \
    --cmdline "$cmdline" --disk $W/disk.img --net tap=vtap1,mac=52:54:00:12:34:56 || fail "linux run"
  wait_for la '^TICK [0-9]+ ping=ok' 150
}
# In L1 a guest now and then triple-faults in early boot without an exception of its
# own (tests/vmharness/README.md, "Spurious L2 shutdowns"): such a boot (exit detail
# "triple fault", nothing of its init on the console) is booted once more, with a NOTE.
# Any other failure is reported with the VM's state and console.
start_la; r=$?
if [ $r != 0 ]; then
  st=$(vessel --root $R vm state la 2>&1)
  why la
  if echo "$st" | grep -q '"exit_detail": *"[^"]*triple fault' && ! log la | grep -q '^GUEST-'; then
    echo "NOTE: spurious shutdown allowed here: la triple-faulted in early boot; booting it once more"
    vessel --root $R vm delete --force la >/dev/null 2>&1
    cp $L/disk.img $W/disk.img
    start_la; r=$?
  fi
fi
pf boot-ping $r
log la | grep -E '^(GUEST|TICK)' | tail -3
gen0=$(field la GUEST-READY gen)
vessel --root $R vm pause la || fail "pause la"
before=$(lastn la)
t0=$(now); vessel --root $R vm snapshot la $SL; pf snapshot $?; t1=$(now)
echo "linux guest snapshot (256 MiB, paused): $((t1 - t0)) ms; memory file $(du -k $SL/memory | cut -f1) KiB on disk"
vessel --root $R vm kill la >/dev/null; vessel --root $R vm delete la
md5_before=$(md5sum < $W/disk.img)

# Two clones: own taps (ct0, ct1), overlays, MACs, generation IDs.
tapup ct0 lc-0; tapup ct1 lc-1
t0=$(now); vessel --root $R vm clone $SL --count 2 --name lc --net 'tap=ct{i}'; pf clone $?; t1=$(now)
echo "vm clone --count 2: $((t1 - t0)) ms"
for c in 0 1; do
  wait_for lc-$c '^NEWGEN' 60; r=$?; pf clone$c-newgen $r; [ $r = 0 ] || why lc-$c
  wait_for lc-$c '^TICK [0-9]+ ping=ok' 60; pf clone$c-ping $?
  log lc-$c | grep -E '^(NEWGEN|TICK)' | head -3
  pf clone$c-count-continues "$([ "$(firstn lc-$c)" = $((before + 1)) ]; echo $?)"
  pf clone$c-rng-reseeded "$([ "$(field lc-$c NEWGEN reseeded)" = yes ]; echo $?)"
  pf clone$c-overlay "$([ -s $R/vm/lc-$c/disk0.qcow2 ]; echo $?)"
done
g0=$(field lc-0 NEWGEN gen); g1=$(field lc-1 NEWGEN gen)
m0=$(field lc-0 NEWGEN mac); m1=$(field lc-1 NEWGEN mac)
r0=$(field lc-0 NEWGEN rnd); r1=$(field lc-1 NEWGEN rnd)
echo "generation IDs: snapshot $gen0, clones $g0 $g1; MACs $m0 $m1; urandom $r0 $r1"
pf clones-differ-vmgenid "$([ -n "$g0" ] && [ "$g0" != "$g1" ] && [ "$g0" != "$gen0" ] && [ "$g1" != "$gen0" ]; echo $?)"
pf clones-differ-mac "$([ -n "$m0" ] && [ "$m0" != "$m1" ] && [ "$m0" != 52:54:00:12:34:56 ] && [ "$m1" != 52:54:00:12:34:56 ]; echo $?)"
pf clones-differ-rng "$([ -n "$r0" ] && [ "$r0" != "$r1" ]; echo $?)"
touch $W/www/stop
for c in 0 1; do wait_for lc-$c '^GUEST-STOPPED clean' 60; pf clone$c-clean-stop $?; done
sleep 2
for c in 0 1; do
  q=$R/vm/lc-$c/disk0.qcow2
  qemu-img check $q > /tmp/lx.check 2>&1; pf clone$c-qcow2-check "$(grep -q 'No errors' /tmp/lx.check; echo $?)"
  qemu-img convert -O raw $q $W/flat.raw && e2fsck -fn $W/flat.raw > /tmp/lx.fsck 2>&1; rc=$?
  [ $rc = 0 ] || cat /tmp/lx.fsck
  pf clone$c-fsck "$rc"
  pf clone$c-wrote-its-overlay "$(e2fsck -fn $W/flat.raw >/dev/null 2>&1; [ "$(md5sum < $W/flat.raw)" != "$md5_before" ]; echo $?)"
  rm -f $W/flat.raw
done
pf clones-left-the-disk-alone "$([ "$(md5sum < $W/disk.img)" = "$md5_before" ]; echo $?)"
for c in 0 1; do vessel --root $R vm kill lc-$c >/dev/null 2>&1; vessel --root $R vm delete lc-$c || fail "delete lc-$c"; done
rm -f $W/www/stop

# Restore in place, in a new VMM: the count and the ping continue.
tapup vtap1 lb
t0=$(now); vessel --root $R vm restore $SL -d --name lb; pf restore $?; t1=$(now)
echo "vm restore -d: $((t1 - t0)) ms"
wait_for lb '^TICK [0-9]+ ping=ok' 60; pf restore-ping $?
log lb | grep -E '^(NEWGEN|TICK)' | head -3
pf restore-count-continues "$([ "$(firstn lb)" = $((before + 1)) ]; echo $?)"
pf restore-newgen "$([ -n "$(field lb NEWGEN gen)" ] && [ "$(field lb NEWGEN gen)" != "$gen0" ]; echo $?)"
touch $W/www/stop
wait_for lb '^GUEST-STOPPED clean' 60; pf restore-clean-stop $?
sleep 2
vessel --root $R vm kill lb >/dev/null 2>&1; vessel --root $R vm delete lb
e2fsck -fn $W/disk.img > /tmp/lx.fsck 2>&1; rc=$?; [ $rc = 0 ] || cat /tmp/lx.fsck
pf restore-fsck $rc
# The disk changed after the snapshot: a restore is refused, nothing left behind.
out=$(vessel --root $R vm restore $SL -d --name lbad 2>&1); rc=$?; echo "$out"
pf changed-disk-refused "$([ $rc != 0 ] && echo "$out" | grep -q 'changed since the snapshot' && [ ! -d $R/vm/lbad ]; echo $?)"
# Live migration of the same guest with its disk and NIC, then vm upgrade: a
# TCP connection from L1 to the guest's echo server (port 7000) exchanges a
# line every 0.1 s throughout. The destination VMM runs the NIC on a tap of
# its own (vm receive --net tap=vtap2; the source holds vtap1); L1 gives both
# taps the same MAC and address, and moves the guest's route once the VM
# moved (what a host's network setup does for a migrated VM). vm upgrade hands
# the open tap over. Every line sent comes back, in order, on the one
# connection; the count goes on across the consoles; the disk fscks clean.
rm -f $W/www/stop
GIP=10.3.52.86  # from MAC 52:54:00:12:34:56
# tapmig TAP [route]: once vessel opened TAP, L1's side of it (MAC, 10.3.0.1), and the guest's route when asked.
tapmig() {
  ( for i in $(seq 600); do ip link show $1 >/dev/null 2>&1 && break; sleep 0.1; done
    ip link set $1 address 02:00:0a:03:00:01; ip addr add 10.3.0.1/32 dev $1; ip link set $1 up
    [ -n "${2:-}" ] && ip route replace $GIP/32 dev $1 ) &
}
lmlog() { cat $R/vm/$1/serial.log.1 $R/vm/$1/serial.log 2>/dev/null | tr -d '\r'; }
ticks_of() { sed -n 's/^TICK \([0-9]*\) .*/\1/p'; }
tapmig vtap1 route
vessel --root $R vm run -d --name lm --kernel $L/vmlinuz --initrd $L/inner.cpio.gz --memory 256M --cpus 1 \
  --cmdline "$cmdline" --disk $W/disk.img --net tap=vtap1,mac=52:54:00:12:34:56 --vsock cid=3,uds=$W/lm.vsock \
  || fail "linux run lm"
wait_for lm '^TICK [0-9]+ ping=ok' 150; r=$?; pf mig-boot-ping $r; [ $r = 0 ] || why lm
# vsock_at PATH STEP: 3 connections through the VMM's socket PATH to the guest's port 5000, each echoed.
vsock_at() {
  out=$($L/vsock_echo uds-connect $1 5000 3 20000 2>&1); r=$?
  [ $r = 0 ] || echo "vsock $2: $out"
  pf mig-vsock-$2 $r
}
vsock_at $W/lm.vsock before
( i=0; while [ $i -lt 6000 ]; do i=$((i + 1)); echo "E $i"; sleep 0.1; done ) | nc $GIP 7000 > /tmp/lm.echo 2>&1 &
ncpid=$!
# echoed N SECONDS: until line "E N" came back.
echoed() { i=0; while [ $i -lt $(($2 * 10)) ]; do grep -q "^E $1\$" /tmp/lm.echo && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
last_echo() { tail -n 1 /tmp/lm.echo | sed -n 's/^E \([0-9]*\)$/\1/p'; }
# goes_on STEP: the echoes go on past the last one now, on the same connection.
goes_on() {
  e=$(last_echo)
  echoed $((${e:-0} + 30)) 90; r=$?; pf mig-connection-survives-$1 $r
  [ $r = 0 ] || { echo "last echo ${e} then $(last_echo)"; why lm2; }
  kill -0 $ncpid 2>/dev/null; pf mig-nc-still-connected-after-$1 $?
}
echoed 10 60; r=$?; pf mig-echo-connected $r
[ $r = 0 ] || { echo "echo: $(tail -3 /tmp/lm.echo)"; why lm; }
tapmig vtap2
vessel --root $R vm receive -d --name lm2 --listen unix:/tmp/lm2.sock --net tap=vtap2 --vsock uds=$W/lm2.vsock \
  || fail "receive lm2"
out=$(vessel --root $R vm migrate lm --to unix:/tmp/lm2.sock 2>&1); rc=$?
ip route replace $GIP/32 dev vtap2
echo "$out" | tail -2
pf mig-migrate $rc
goes_on migration
wait_for lm2 '^TICK [0-9]+ ping=ok' 60; pf mig-ping-after-migration $?
vsock_at $W/lm2.vsock after-migration
# gone PATH: until PATH is no more (10 s: its VMM may still be exiting).
gone() { i=0; while [ -e $1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; [ ! -e $1 ]; }
pf mig-vsock-source-socket-removed "$(gone $W/lm.vsock; echo $?)"
out=$(vessel --root $R vm upgrade lm2 2>&1); rc=$?
echo "$out" | tail -2
pf mig-upgrade $rc
goes_on upgrade
vsock_at $W/lm2.vsock after-upgrade
n=$(grep -c . /tmp/lm.echo)
pf mig-every-line-echoed-in-order "$(awk '$0 != "E " NR { bad = 1 } END { exit bad }' /tmp/lm.echo; echo $?)"
echo "echo connection: $n lines back in order across the migration and the upgrade"
kill $ncpid 2>/dev/null
# The count goes on across the three consoles (the source's, then the destination's before and after the upgrade).
seq_ok=$({ log lm; lmlog lm2; } | ticks_of | awk 'NR > 1 && $1 != prev + 1 && $1 != prev { bad = 1; print "gap " prev " " $1 } { prev = $1 } END { exit bad }'; echo $?)
pf mig-count-continues "$seq_ok"
touch $W/www/stop
wait_for lm2 '^GUEST-STOPPED clean' 60; pf mig-clean-stop $?
sleep 2
vessel --root $R vm kill lm2 >/dev/null 2>&1; vessel --root $R vm delete lm2; vessel --root $R vm delete lm >/dev/null 2>&1
pf mig-vsock-sockets-removed "$(gone $W/lm2.vsock && gone $W/lm.vsock; echo $?)"
e2fsck -fn $W/disk.img > /tmp/lx.fsck 2>&1; rc=$?; [ $rc = 0 ] || cat /tmp/lx.fsck
pf mig-fsck $rc
rm -f $W/www/stop
kill $httpd_pid 2>/dev/null
