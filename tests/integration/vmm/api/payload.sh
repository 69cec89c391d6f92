#!/bin/sh
# The API test with a real guest, run as root inside L1 (QEMU-TCG with nested
# SVM KVM): Debian's kernel with a busybox-init initramfs.
#   Run 1 (Firecracker's getting-started sequence, unchanged): `vm create
#     --api-sock`, then only curl over the unix socket: logger, boot-source,
#     drives, machine-config, network-interfaces, entropy, metrics (a FIFO),
#     InstanceStart. The console is read and typed into with `vm console`;
#     pause stops the guest's counter, resume continues it; PATCH /drives swaps
#     a drive's file (the guest sees the new size) and sets a rate limit (the
#     guest's read slows down, the metrics count the throttling); then
#     SendCtrlAltDel: the guest's init runs its shutdown action (unmounts its
#     disk) and powers off; nothing is left.
#   Run 2: `vm run -d --config-file` (Firecracker's format), `vm stop`, `vm delete`.
# Prints "VESSEL-CHECK <name> PASS|FAIL" and "VESSEL-MEASURE <name> <value>".
D=${API_DIR:-/extra/api}
V=${VESSEL:-$(command -v vessel)}
K=${API_KERNEL:-$( [ -f /guest/vmlinuz ] && echo /guest/vmlinuz || echo /vmlinuz )}
CURL=/usr/local/bin/curl
mark() { echo "VESSEL-CHECK $1 $2"; }
pf() { if [ "$2" = 0 ]; then mark "$1" PASS; else mark "$1" FAIL; fi; }
measure() { echo "VESSEL-MEASURE $1 $2"; }
# Waits up to $3 s for the extended regex $1 in file $2.
wait_for() { i=0; while [ $i -lt $(($3 * 10)) ]; do grep -Eq "$1" "$2" 2>/dev/null && return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
# A process is gone once it exited (a zombie counts as gone).
alive() { [ -r /proc/$1/stat ] && [ "$(cut -d' ' -f3 /proc/$1/stat 2>/dev/null)" != Z ]; }
pid_gone() { i=0; while [ $i -lt $(($2 * 10)) ]; do alive $1 || return 0; sleep 0.1; i=$((i + 1)); done; return 1; }
# Waits for background job $1 at most $2 s (then kills it); its exit status.
wait_job() { ( sleep $2; kill $1 2>/dev/null ) & k=$!; wait $1; r=$?; kill $k 2>/dev/null; return $r; }
last_count() { grep -a -o 'COUNT [0-9]*' "$1" | tail -n 1 | cut -d' ' -f2; }
json_num() { grep -o "\"$1\":[0-9]*" | head -n 1 | cut -d: -f2; }
ROOT=/run/vessel
W=/tmp/api; mkdir -p $W; cp "$D"/rootfs.ext4 "$D"/data1.img "$D"/data2.img $W/
[ -e /dev/net/tun ] || insmod "$D/mod/tun.ko" 2>/dev/null
[ -e /dev/net/tun ] || { mkdir -p /dev/net; mknod /dev/net/tun c 10 200; }

# ---- Run 1: Firecracker's getting-started sequence with curl ----
S=/tmp/firecracker.socket
"$V" vm create --name fc --api-sock $S; pf create-unconfigured-vmm $?
LOG=$ROOT/vm/fc/serial.log
code() { tail -n 1 $W/resp; }
# curl exactly as Firecracker's guide: -X PUT --unix-socket ... --data ... URL; the status code is appended.
put() { $CURL -s -X "${3:-PUT}" --unix-socket $S --data "$2" -o $W/body -w '%{http_code}\n' "http://localhost/$1" > $W/resp; cat $W/body >> $W/api.txt 2>/dev/null; code; }
$CURL -s --unix-socket $S http://localhost/ > $W/info.json; cat $W/info.json; echo
pf get-instance-info-not-started "$(grep -q '"state":"Not started"' $W/info.json; echo $?)"
mkfifo $W/metrics.fifo; cat $W/metrics.fifo > $W/metrics.out & metrics_reader=$!
touch $W/fc.log
ok=0
for req in \
  "logger|{\"log_path\": \"$W/fc.log\", \"level\": \"Debug\", \"show_level\": true, \"show_log_origin\": true}" \
  "boot-source|{\"kernel_image_path\": \"$K\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off loglevel=4\", \"initrd_path\": \"$D/inner.cpio.gz\"}" \
  "drives/rootfs|{\"drive_id\": \"rootfs\", \"path_on_host\": \"$W/rootfs.ext4\", \"is_root_device\": true, \"is_read_only\": false}" \
  "drives/data|{\"drive_id\": \"data\", \"path_on_host\": \"$W/data1.img\", \"is_root_device\": false, \"is_read_only\": false}" \
  "machine-config|{\"vcpu_count\": 2, \"mem_size_mib\": 256}" \
  "network-interfaces/net1|{\"iface_id\": \"net1\", \"guest_mac\": \"06:00:AC:10:00:02\", \"host_dev_name\": \"vapi0\"}" \
  "entropy|{}" \
  "metrics|{\"metrics_path\": \"$W/metrics.fifo\"}" \
  "actions|{\"action_type\": \"InstanceStart\"}"; do
  c=$(put "${req%%|*}" "${req#*|}")
  echo "PUT /${req%%|*} -> $c"
  [ "$c" = 204 ] || { ok=1; cat $W/body; echo; }
done
pf curl-getting-started-sequence $ok
# A second InstanceStart: 400 naming the problem.
c=$(put actions '{"action_type": "InstanceStart"}'); pf instance-start-twice-400 "$([ "$c" = 400 ] && grep -q 'started already' $W/body; echo $?)"
t0=$(cut -d' ' -f1 /proc/uptime)
# The tap exists once the VM runs: give it the host's address.
ip addr add 10.0.3.1/24 dev vapi0 && ip link set vapi0 up; pf tap-created "$?"
wait_for GUEST-READY $LOG 300; pf guest-ready $?
measure guest-ready-after-start-s "$(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')"
grep -a GUEST- $LOG | tr -d '\r'
pf guest-root-drive "$(grep -aq 'GUEST-ROOTFS from-the-root-drive' $LOG; echo $?)"
pf guest-mac "$(grep -aq 'GUEST-MAC 06:00:ac:10:00:02' $LOG; echo $?)"
pf guest-entropy "$(grep -aq 'GUEST-RNG virtio' $LOG; echo $?)"
pf guest-keyboard-bound "$(grep -aq 'GUEST-KBD yes' $LOG; echo $?)"
pid=$(cat $ROOT/vm/fc/vmm.json | json_num pid)
echo "VMM pid $pid"

# vm console: read the counter and type into the guest's shell.
(sleep 1; echo 'echo TYPED-$((6*7))'; sleep 3) | "$V" vm console fc > $W/console1.out 2>&1
pf console-reads-output "$(grep -aq 'COUNT [0-9]' $W/console1.out; echo $?)"
pf console-types-input "$(grep -aq 'TYPED-42' $W/console1.out; echo $?)"

# vm state / vm list.
"$V" vm state fc > $W/state.json; cat $W/state.json
pf state-running "$(grep -q '"status": "running"' $W/state.json && grep -q '"vcpus": 2' $W/state.json && grep -q '"memory_mib": 256' $W/state.json; echo $?)"
pf state-devices "$(grep -q virtio-net $W/state.json && grep -q virtio-rng $W/state.json && grep -q '"id": "data"' $W/state.json; echo $?)"
"$V" vm list > $W/list.txt; cat $W/list.txt
pf list-running "$(grep -q 'fc .*running' $W/list.txt; echo $?)"

# Pause: the counter stops for 2 s; resume: it goes on.
"$V" vm pause fc; pf pause $?
$CURL -s --unix-socket $S http://localhost/ > $W/info.json
pf get-instance-info-paused "$(grep -q '"state":"Paused"' $W/info.json; echo $?)"
sleep 0.5; c1=$(last_count $LOG); s1=$(wc -c < $LOG); sleep 2; c2=$(last_count $LOG); s2=$(wc -c < $LOG)
measure counter-while-paused "$c1->$c2"
pf paused-counter-stops "$([ -n "$c1" ] && [ "$c1" = "$c2" ] && [ "$s1" = "$s2" ]; echo $?)"
"$V" vm resume fc; pf resume $?
sleep 2; c3=$(last_count $LOG)
measure counter-after-resume "$c2->$c3"
pf resumed-counter-advances "$([ -n "$c3" ] && [ "$c3" -gt "$c2" ]; echo $?)"

# The network: the guest pings the host through the tap.
(sleep 1; echo 'ping -c 3 -W 3 10.0.3.1 >/dev/null && echo PING-OK'; sleep 1) | "$V" vm console fc > /dev/null 2>&1
wait_for PING-OK $LOG 30; pf guest-ping-host $?

# PATCH /drives on the running VM: a bigger file (the guest sees the new capacity) ...
pf data-drive-8m "$(grep -aq 'vdb=16384' $LOG; echo $?)"
c=$(put drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$W/data2.img\"}" PATCH)
pf patch-drive-path-204 "$([ "$c" = 204 ]; echo $?)"
wait_for 'vdb=32768' $LOG 30; pf patch-drive-guest-sees-new-size $?
c=$(put drives/data '{"drive_id": "data", "path_on_host": "/nonexistent/disk.img"}' PATCH)
pf patch-drive-missing-file-400 "$([ "$c" = 400 ] && grep -q /nonexistent/disk.img $W/body; echo $?)"
# ... and a rate limit: 1 MiB/s (the bucket holds 1 MiB): 4 MiB take about 3 s, against a fraction unlimited.
(sleep 1; echo 'ddtime /dev/vdb 4 FREE'; sleep 1) | "$V" vm console fc > /dev/null 2>&1
wait_for 'DD-MS-FREE' $LOG 60
c=$(put drives/data '{"drive_id": "data", "rate_limiter": {"bandwidth": {"size": 1048576, "refill_time": 1000}}}' PATCH)
pf patch-drive-rate-limit-204 "$([ "$c" = 204 ]; echo $?)"
(sleep 1; echo 'echo 3 > /proc/sys/vm/drop_caches; ddtime /dev/vdb 4 LIMITED'; sleep 1) | "$V" vm console fc > /dev/null 2>&1
wait_for 'DD-MS-LIMITED' $LOG 60
free=$(grep -a -o 'DD-MS-FREE [0-9]*' $LOG | tail -n 1 | cut -d' ' -f2)
limited=$(grep -a -o 'DD-MS-LIMITED [0-9]*' $LOG | tail -n 1 | cut -d' ' -f2)
measure dd-4mib-ms-unlimited-limited "$free/$limited"
pf patch-drive-rate-limit-slows-guest "$([ -n "$limited" ] && [ "$limited" -ge 2000 ] && [ "$limited" -gt "$free" ]; echo $?)"

# Metrics: FlushMetrics writes a line to the FIFO (Firecracker's names).
c=$(put actions '{"action_type": "FlushMetrics"}'); pf flush-metrics-204 "$([ "$c" = 204 ]; echo $?)"
sleep 1
tail -n 1 $W/metrics.out | head -c 3000; echo
sum() { grep -o "\"$1\":{[^}]*}" $W/metrics.out | grep -o "\"$2\":[0-9]*" | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'; }
measure metrics-lines "$(wc -l < $W/metrics.out)"
rb=$(sum block_rootfs read_bytes); thr=$(sum block_data rate_limiter_throttled_events); upd=$(sum block_data update_count)
tx=$(sum net_net1 tx_packets_count); rx=$(sum net_net1 rx_packets_count); io=$(sum vcpu exit_io_out); ent=$(sum entropy entropy_bytes)
measure metrics-rootfs-read-bytes "$rb"; measure metrics-data-throttled "$thr"; measure metrics-net-tx-rx "$tx/$rx"
measure metrics-vcpu-exit-io-out "$io"; measure metrics-entropy-bytes "$ent"
pf metrics-block "$([ "$rb" -gt 0 ] && [ "$upd" = 2 ]; echo $?)"
pf metrics-rate-limiter-throttled "$([ "$thr" -gt 0 ]; echo $?)"
pf metrics-net "$([ "$tx" -gt 0 ] && [ "$rx" -gt 0 ]; echo $?)"
pf metrics-vcpu-exits "$([ "$io" -gt 0 ]; echo $?)"
pf metrics-vmm-rss "$(tail -n 1 $W/metrics.out | grep -q '"rss_kib":[1-9]'; echo $?)"
"$V" vm state --stats fc > $W/stats.json
pf state-stats "$(grep -q '"exit_mmio_write"' $W/stats.json && grep -q '"vmm_rss_kib"' $W/stats.json; echo $?)"
measure vmm-rss-kib "$(grep -o '"vmm_rss_kib": [0-9]*' $W/stats.json | grep -o '[0-9]*$')"

# SendCtrlAltDel: the guest's init runs its shutdown (seen through vm console) and powers off.
# Its stdin (a FIFO the shell holds open) stays open: the console ends when the VM does.
mkfifo $W/console.in
"$V" vm console fc < $W/console.in > $W/console2.out 2>&1 & console=$!
exec 3> $W/console.in
sleep 1
c=$(put actions '{"action_type": "SendCtrlAltDel"}'); pf send-ctrl-alt-del-204 "$([ "$c" = 204 ]; echo $?)"
pid_gone "$pid" 120; pf vmm-exits-after-ctrl-alt-del $?
wait_for GUEST-SHUTDOWN-END $W/console2.out 5; pf guest-shutdown-ran-seen-by-console $?
grep -a -E 'GUEST-SHUTDOWN|going down|poweroff|Power down' $W/console2.out | tr -d '\r'
"$V" vm state fc > $W/state2.json; cat $W/state2.json
pf exit-reason-poweroff "$(grep -q '"exit_reason": "poweroff"' $W/state2.json; echo $?)"
wait_job $console 10; pf console-client-ends-with-the-vm $?
exec 3>&-
wait_job $metrics_reader 10; pf metrics-fifo-closed $?
pf final-metrics-line "$(tail -n 1 $W/metrics.out | grep -q '"status":"stopped"'; echo $?)"
pf disk-shutdown-file "$(debugfs -R 'cat /shutdown.txt' $W/rootfs.ext4 2>/dev/null | grep -q 'clean shutdown'; echo $?)"
pf disk-clean-unmount "$(debugfs -R stats $W/rootfs.ext4 2>/dev/null | grep -q 'Filesystem state: *clean$'; echo $?)"
pf no-api-socket "$([ ! -e $S ]; echo $?)"
[ -s $ROOT/vm/fc/vmm.log ] && { echo "vmm.log:"; cat $ROOT/vm/fc/vmm.log; }
pf no-tap "$(ip link show vapi0 >/dev/null 2>&1; [ $? != 0 ]; echo $?)"
pf no-vmm-process "$(alive $pid; [ $? != 0 ]; echo $?)"
"$V" vm delete fc; pf delete $?
pf no-state-dir "$([ ! -e $ROOT/vm/fc ]; echo $?)"
grep -q 'vmm' $W/fc.log; pf logger-file-written $?

# ---- Run 2: a config file in Firecracker's format, vm run -d, vm stop ----
cat > $W/vm.json <<JSON
{
  "boot-source": {"kernel_image_path": "$K", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off loglevel=4",
                  "initrd_path": "$D/inner.cpio.gz"},
  "drives": [{"drive_id": "rootfs", "path_on_host": "$W/rootfs.ext4", "is_root_device": true, "is_read_only": false},
             {"drive_id": "data", "path_on_host": "$W/data1.img", "is_root_device": false, "is_read_only": true}],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 192, "smt": false},
  "network-interfaces": []
}
JSON
"$V" vm run -d --name cf --config-file $W/vm.json; pf config-file-run-d $?
LOG2=$ROOT/vm/cf/serial.log
pid2=$(cat $ROOT/vm/cf/vmm.json | json_num pid)
wait_for GUEST-READY $LOG2 300; pf config-file-guest-ready $?
pf config-file-root-drive "$(grep -aq 'GUEST-ROOTFS from-the-root-drive' $LOG2; echo $?)"
"$V" vm stop cf --timeout 120; pf vm-stop-exit-0 $?
pf vm-stop-guest-shutdown-ran "$(grep -aq GUEST-SHUTDOWN-END $LOG2; echo $?)"
"$V" vm state cf > $W/state3.json
pf vm-stop-exit-reason-poweroff "$(grep -q '"exit_reason": "poweroff"' $W/state3.json; echo $?)"
pf vm-stop-no-process "$(alive $pid2; [ $? != 0 ]; echo $?)"
"$V" vm delete cf; pf vm-stop-delete $?
pf nothing-left "$([ -z "$(ls -A $ROOT/vm 2>/dev/null)" ] && [ ! -e $ROOT/vm/cf ]; echo $?)"
exit 0  # the harness fails the test for any VESSEL-CHECK ... FAIL above
