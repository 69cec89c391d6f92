#!/bin/sh
# Payload of ctest vmharness.vmm_snapshot_cli (run_cli.sh): snapshots through
# the real binary on the L1's nested KVM, with a tiny PVH guest that prints
# the digits 0-9 over and over: the API refuses a snapshot of a running VM
# (it runs on), vm snapshot / vm restore -d continue the count from the
# digit where it stopped, a restored VM snapshots again, vm clone runs
# three clones, restore --paused, PUT /snapshot/load on a vm create VMM,
# bad snapshot files refused with nothing left behind.
set -u
R=/tmp/root; S=/tmp/snap; K=/extra/kernel/count.elf
fail() { echo "FAIL: $*"; exit 1; }
vessel --root $R vm run -d --name a --kernel $K --cpus 2 || fail "run"
sleep 2
# The API refuses a snapshot of a running VM; the VM keeps running.
curl -s --unix-socket $R/vm/a/api.sock -X PUT http://localhost/snapshot/create -d '{"snapshot_type":"Full","snapshot_path":"/tmp/x.state","mem_file_path":"/tmp/x.mem"}'; echo
curl -s --unix-socket $R/vm/a/api.sock -X PUT http://localhost/snapshot/create -d '{"snapshot_type":"Partial","snapshot_path":"/tmp/x.state","mem_file_path":"/tmp/x.mem"}'; echo
vessel --root $R vm state a | grep -q '"running"' || fail "not running after a refused snapshot"
vessel --root $R vm pause a || fail pause
before=$(tail -c 1 $R/vm/a/serial.log)
time vessel --root $R vm snapshot a $S || fail snapshot
ls -ls $S
vessel --root $R vm kill a; vessel --root $R vm delete a || fail delete
time vessel --root $R vm restore $S -d --name b || fail restore
sleep 1
first=$(head -c 1 $R/vm/b/serial.log)
echo "last digit before the snapshot: $before; first digit after the restore: $first"
[ "$first" = "$(( (before + 1) % 10 ))" ] || fail "the count did not continue (got $first after $before)"
vessel --root $R vm state b | grep -q '"running"' || fail "b not running"
# A second snapshot of the restored VM (running: the verb pauses and resumes it), then clones.
vessel --root $R vm snapshot b $S.2 || fail "snapshot b"
vessel --root $R vm state b | grep -q '"running"' || fail "b not running after snapshot"
vessel --root $R vm clone $S.2 --count 3 --name cl || fail clone
sleep 1
for i in 0 1 2; do vessel --root $R vm state cl-$i | grep -q '"running"' || fail "clone $i"; [ -s $R/vm/cl-$i/serial.log ] || fail "clone $i silent"; done
# Restore --paused, then load over the API of a fresh VMM, bad files.
vessel --root $R vm restore $S -d --name p --paused || fail "restore paused"
vessel --root $R vm state p | grep -q '"paused"' || fail "p not paused"
vessel --root $R vm create --name f || fail create
curl -s --unix-socket $R/vm/f/api.sock -X PUT http://localhost/snapshot/load -d "{\"snapshot_path\":\"$S/state\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"$S/memory\"},\"resume_vm\":true}" -w '%{http_code}\n'
vessel --root $R vm state f | grep -q '"running"' || fail "f not running after /snapshot/load"
head -c 100 $S/state > /tmp/trunc.state
vessel --root $R vm restore /tmp -d --name bad 2>&1; echo "rc=$?"
mkdir -p /tmp/t && cp /tmp/trunc.state /tmp/t/state && cp $S/memory /tmp/t/memory
vessel --root $R vm restore /tmp/t -d --name bad2 2>&1; echo "rc=$?"
[ -d $R/vm/bad2 ] && fail "state left behind by a failed restore"
for v in b cl-0 cl-1 cl-2 p f; do vessel --root $R vm kill $v >/dev/null; vessel --root $R vm delete $v || fail "delete $v"; done
[ -d /extra/linux ] && . /extra/snapshot-linux/linux_in_l1.sh
echo ALL-OK
