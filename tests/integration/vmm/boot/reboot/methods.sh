#!/bin/sh
# Every way Linux reboots ends `vessel vm run` promptly with exit status 3; a triple
# fault the guest did not announce (a panic with reboot=t: no ACPI \_TTS(5)) stays an
# error (exit 1, with the registers). Runs inside the harness's L1, three guests at a
# time. Each check: VESSEL-CHECK reboot-<method> PASS|FAIL <exit status> <seconds>.
#   default  Linux's own choice: on hardware-reduced ACPI "EFI", then the BIOS reset
#            vector (machine_real_restart), which vessel's reset stub answers
#   k        i8042 pulse (0xFE to port 0x64), with 8 vCPUs, all online
#   a        the FADT reset register
#   t        triple fault after _TTS(5)            pci  port 0xCF9
#   panic-t  a panic (no init: rdinit names a missing file, no root=) with reboot=t:
#            an unannounced triple fault -> exit 1
# and --on-reboot restart: the guest (which always reboots) boots twice, then SIGTERM
# ends the run with 0.
now() { cut -d' ' -f1 /proc/uptime; }
# Under TCG a nested guest very rarely hangs during early boot, before it reaches the
# code under test (seen once in CI: a panic-t guest printed nothing for 240 s). A boot
# that timed out without reaching its marker is booted once more, with a note; a boot
# that reached its marker and then did not end as it should is a failure at once.
boot() {  # boot NAME EXPECTED_RC CMDLINE_EXTRA [MARKER [CPUS]]
  name=$1 want=$2 extra=$3 marker=${4:-VESSEL-GUEST-UP} cpus=${5:-1}
  for attempt in 1 2; do
    s=$(now)
    timeout 150 vessel vm run --kernel /guest/vmlinuz --initrd /guest/initrd.cpio --cpus "$cpus" --memory 256M \
      --cmdline "console=ttyS0 panic=-1 quiet vessel.exit=reboot $extra" \
      --serial "file:/tmp/reboot-$name.log" </dev/null 2>"/tmp/reboot-$name.err"
    rc=$?
    e=$(now)
    secs=$(awk -v s="$s" -v e="$e" 'BEGIN { printf "%.1f", e - s }')
    reached=0; grep -q "$marker" "/tmp/reboot-$name.log" && reached=1
    hung=$(awk -v t="$secs" 'BEGIN { print (t >= 149) ? 1 : 0 }')
    # Also once more: a guest that should reboot but a vCPU of it was shut down with
    # INIT-state registers (L1's nested-SVM damage, tests/vmharness/README.md; a CI run
    # lost reboot-k, 8 vCPUs, so). panic-t wants that exit status: never retried.
    damaged=0
    [ "$want" != 1 ] && [ "$rc" = 1 ] && grep -q "its INIT state" "/tmp/reboot-$name.err" && damaged=1
    [ "$attempt" = 1 ] && [ "$rc" != "$want" ] && { [ $damaged = 1 ] || { [ $reached = 0 ] && [ "$hung" = 1 ]; }; } || break
    if [ $damaged = 1 ]; then
      echo "VESSEL-NOTE reboot-$name: a vCPU was shut down with INIT-state registers (L1's damage: $(head -c 200 "/tmp/reboot-$name.err" | tr '\n' '|')); booting it again"
    else
      echo "VESSEL-NOTE reboot-$name: the guest hung before \"$marker\" (${secs}s; console tail: $(tail -c 300 "/tmp/reboot-$name.log" | tr '\n' '|')); booting it again"
    fi
  done
  res=FAIL
  [ "$rc" = "$want" ] && [ $reached = 1 ] && res=PASS
  echo "VESSEL-CHECK reboot-$name $res rc=$rc (want $want) ${secs}s attempts=$attempt"
  [ $res = PASS ] || { tail -n 5 "/tmp/reboot-$name.log"; cat "/tmp/reboot-$name.err"; } >>/tmp/reboot-failures
}
# (Without "quiet": a failed run's console shows how far each boot got.) A run that ended
# in a triple fault showing KVM's INIT-state registers before the second boot was up, the
# spurious L2 shutdown of L1's nested SVM (tests/vmharness/README.md; seen in CI during
# the first boot's FPU setup), runs once more with a NOTE.
restart() {
  log=/tmp/reboot-restart.log err=/tmp/reboot-restart.err
  for attempt in 1 2; do
    vessel vm run --kernel /guest/vmlinuz --initrd /guest/initrd.cpio --cpus 1 --memory 256M --on-reboot restart \
      --cmdline "console=ttyS0 panic=-1 vessel.exit=reboot rdinit=/init" --serial "file:$log" </dev/null 2>$err &
    pid=$!
    i=0
    ups() { cat "$log" 2>/dev/null | grep -c VESSEL-GUEST-UP; }
    while [ "$(ups)" -lt 2 ] && [ $i -lt 2400 ] && kill -0 $pid 2>/dev/null; do
      sleep 0.1; i=$((i + 1))
    done
    boots=$(ups)
    kill -TERM $pid 2>/dev/null
    wait $pid
    rc=$?
    [ "$attempt" = 1 ] && [ "$boots" -lt 2 ] && grep -q 'triple fault' $err && grep -q 'its INIT state' $err || break
    echo "VESSEL-NOTE reboot-on-reboot-restart: a spurious shutdown after $boots boot(s) up (rc=$rc: $(head -c 160 $err)); running it again"
  done
  res=FAIL; [ "$boots" -ge 2 ] && [ $rc = 0 ] && res=PASS
  echo "VESSEL-CHECK reboot-on-reboot-restart $res boots=$boots rc=$rc attempts=$attempt"
  [ $res = PASS ] || { echo "restart: $(grep -c 'Linux version' "$log") kernels started, $(grep -c 'Kernel panic' "$log") panicked"
    tail -n 30 "$log"; cat $err; } >>/tmp/reboot-failures
}
# reboot=k with 8 vCPUs: the guest sees all of them online (/proc/cpuinfo lists online CPUs)
# and the reboot stops the other CPUs first.
boot default 3 "rdinit=/init" & boot k 3 "rdinit=/init reboot=k" "VESSEL-GUEST-UP cpus=8 " 8 &
boot a 3 "rdinit=/init reboot=a" & wait
boot t 3 "rdinit=/init reboot=t" & boot pci 3 "rdinit=/init reboot=pci" &
boot panic-t 1 "rdinit=/no-such-init reboot=t" "Kernel panic" & wait
restart
# The DSDT's \_TTS method (and the rest of the AML) loads without ACPI errors.
if grep -qi "ACPI.*Error\|Failure in evaluating _TTS" /tmp/reboot-default.log; then
  echo "VESSEL-CHECK reboot-acpi-no-errors FAIL"; grep -i "ACPI.*Error\|_TTS" /tmp/reboot-default.log
else echo "VESSEL-CHECK reboot-acpi-no-errors PASS"; fi
grep -q "triple fault" /tmp/reboot-panic-t.err
r=$?; echo "VESSEL-CHECK reboot-panic-t-registers $([ $r = 0 ] && echo PASS || echo FAIL) $(head -c 200 /tmp/reboot-panic-t.err)"
# The failed boots' console tails and errors, last, so that the harness's tail shows them.
[ -s /tmp/reboot-failures ] && { echo "---- failed boots:"; cat /tmp/reboot-failures; }
exit 0
