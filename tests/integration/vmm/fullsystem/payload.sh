#!/bin/sh
# Payload (busybox sh in L1) of ctest vmharness.vmm_fullsystem (run.sh): a Debian 12
# system (build_image.sh) boots to multi-user.target under QEMU/KVM once (the reference)
# and under `vessel vm run` twice: 1 vCPU on the raw disk, powering off (exit 0); 2
# vCPUs on the qcow2 disk with a virtio-net NIC, rebooting (exit 3). Each vessel boot:
# the multi-user marker, `systemctl --failed` empty, no kernel warning or error that
# QEMU's boot does not show too, the CPUs online, the RTC and the system clock right
# (and kvmclock keeping pace with the RTC), an RTC write read back; the NIC talks to L1.
# One VESSEL-CHECK line per check.
# Two boots at a time at most, as many L2 vCPUs as L1 has (2; more starved the guests on a
# loaded host until systemd's 90 s device timeouts hit): QEMU's and vessel's 1-vCPU boots
# side by side, QEMU on /dev/vdc (the raw image once more), then the 2-vCPU boot.
. /extra/fullsystem/lib.sh
W=/tmp/fs; mkdir -p $W
FS_QUIET=1   # each console goes to its log only; the FS- lines are printed after the boot
pass() { echo "VESSEL-CHECK fullsystem-$1 PASS ${2:-}"; }
fail() { echo "VESSEL-CHECK fullsystem-$1 FAIL ${2:-}"; }
check() { name=$1; shift; if "$@"; then pass "$name"; else fail "$name" "$detail"; return 1; fi; }
field() { tr -d '\r' <"$1" | grep "^$2 " | head -n 1; }
between() { [ -n "$1" ] && [ "$1" -ge "$2" ] 2>/dev/null && [ "$1" -le "$3" ]; }
val() { echo "$1" | sed -n "s/.*[ ]$2=\([^ ]*\).*/\1/p"; }
# Kernel warnings/errors of log $1, one per line, without timestamps and with every word
# that holds a digit (numbers, addresses, registers: they differ from boot to boot) as N.
# Not compared: lines that only say that the host was busy (the harness's TCG starves the
# vCPUs now and then, under either VMM), and one known difference of the machines: vessel
# has an i8042 with a keyboard and no mouse port (as Firecracker; it resets the machine
# and takes Ctrl-Alt-Del), QEMU microvm no i8042 at all, so only vessel's guest says
# "i8042: PNP: PS/2 appears to have AUX port disabled". A warning's "Code:" line (the
# instruction bytes around RIP) holds addresses that KASLR moves: its bytes are masked.
IGNORED='clocksource: Long readout interval|hrtimer: interrupt took|i8042: PNP: PS/2 appears to have AUX port disabled'
# A boot made once more after its guest died (fs_vessel_retry, fs_qemu_retry: LOG.retried)
# finds the journal of the dead one unclosed, and journald says so.
warnings() {
  ignored=$IGNORED
  [ -f "$1.retried" ] && ignored="$ignored|journal.*corrupted or uncleanly shut down"
  tr -d '\r' <"$1" | sed -n 's/^FS-DMESG //p' | sed 's/^\[[ 0-9.]*\] //' | grep -vE "$ignored" |
    sed -E 's/^Code: .*/Code: BYTES/; s/[[:alnum:]_]*[0-9][[:alnum:]_]*/N/g' | sort -u
}

[ -c /dev/kvm ] || { echo "no /dev/kvm in L1"; exit 1; }
[ -b /dev/vda ] && [ -b /dev/vdb ] && [ -b /dev/vdc ] ||
  { echo "no /dev/vda, /dev/vdb and /dev/vdc: harness.sh --disk missing"; exit 1; }
[ -e /dev/net/tun ] || insmod /fs/tun.ko || { echo "cannot load tun"; exit 1; }

# check_boot NAME LOG CPUS T_START T_END: the checks of one boot.
check_boot() {
  n=$1 log=$2 cpus=$3 t_start=$4 t_end=$5
  tr -d '\r' <"$log" | grep -E '^FS-|Failed|FAILED|error|panic' | grep -v '^FS-DMESG' | sed "s/^/$n| /"
  detail="no FS-MARKER line"; check "$n-multi-user" grep -q '^FS-MARKER' "$log" ||
    tr -d '\r' <"$log" | tail -n 40 | sed "s/^/$n| /"
  count=$(field "$log" FS-FAILED-COUNT | cut -d' ' -f2)
  detail="failed units: $(tr -d '\r' <"$log" | sed -n 's/^FS-FAILED-UNIT //p' | tr '\n' ';')"
  check "$n-no-failed-units" [ "$count" = 0 ]
  online=$(field "$log" FS-CPUS); detail="$online"
  check "$n-cpus-online" [ "$(val "$online" online)" = "$cpus" ]
  # Clocks: within 10 s of L1's clock across the boot; kvmclock and the RTC agree over 3 s.
  clk=$(field "$log" FS-CLOCK); rtc=$(val "$clk" rtc); sys=$(val "$clk" sys); sys=${sys%.*}
  detail="$clk, L1 $t_start..$t_end"
  check "$n-rtc-time" between "$rtc" $((t_start - 10)) $((t_end + 10))
  check "$n-system-time" between "$sys" $((t_start - 10)) $((t_end + 10))
  d=$(field "$log" FS-CLOCK-DRIFT); detail="$d (s)"
  check "$n-kvmclock-vs-rtc" awk -v r="$(val "$d" rtc_delta)" -v s="$(val "$d" sys_delta)" \
    'BEGIN { x = s - r; exit !(r != "" && s >= 2.9 && x < 1.05 && x > -1.05) }'
  cs=$(field "$log" FS-CLOCKSOURCE); detail="$cs"
  check "$n-clocksource-kvm" [ "$cs" = "FS-CLOCKSOURCE kvm-clock" ]
  w=$(field "$log" FS-RTC-WRITE); detail="$w"
  a=$(val "$w" ahead); r=$(val "$w" restored)
  # hwclock --set waits for the RTC's next second (seconds when the host is busy).
  rtc_write_ok() { between "$a" 3599 3610 && between "$r" -2 2; }
  check "$n-rtc-write" rtc_write_ok
  warnings "$log" >$W/$n.warn
  # (not grep -vxF -f: busybox's matches every line with an empty pattern file)
  extra=$(awk -v ref=$W/qemu.warn 'BEGIN { while ((getline l < ref) > 0) seen[l] = 1 } !($0 in seen)' $W/$n.warn | tr '\n' ';')
  detail="kernel warnings QEMU's boot does not have: $extra"
  check "$n-dmesg-as-qemu" [ -z "$extra" ]
}

# fs_vessel, booted once more (with a NOTE) when the guest died before its FS-DONE in a
# shutdown that shows KVM's INIT-state registers: the spurious shutdowns of L1's nested
# SVM under QEMU TCG (tests/vmharness/README.md; one vessel boot of four in an idle CI run
# died so 0.6 s into the kernel, and tiny guests that only loop die so too), or in a
# double fault of the guest's kernel (one 2-vCPU guest, at the first instruction of
# entry_SYSCALL_64 with a user RSP: registers no guest code set). Any other failure, or a
# second one, is checked as it is.
fs_vessel_retry() {
  fs_vessel "$@"
  if ! grep -q '^FS-DONE' "$1" && grep -qE 'triple fault \(KVM_EXIT_SHUTDOWN\).*INIT state|PANIC: double fault' "$1"; then
    echo "NOTE: $1: the guest died in a spurious nested-SVM shutdown or double fault before its report was done; booting it once more:"
    tr -d '\r' <"$1" | grep -E 'triple fault|double fault|^\[|^FS-' | tail -n 4 | sed 's/^/NOTE|   /'
    : >"$1.retried"
    fs_vessel "$@"
  fi
}

# fs_qemu_retry: fs_qemu, and the same for QEMU's guest: with -no-reboot a guest reset
# (the triple fault above) ends QEMU with exit 0 and no message; a guest that has not
# printed FS-DONE never asked to power off.
fs_qemu_retry() {
  fs_qemu "$@"
  if ! grep -q '^FS-DONE' "$1" && [ "$fs_rc" = 0 ]; then
    echo "NOTE: $1: QEMU's guest ended (a reset, under -no-reboot) before its report was done; booting it once more:"
    tr -d '\r' <"$1" | grep -E '^\[|^FS-' | tail -n 4 | sed 's/^/NOTE|   /'
    : >"$1.retried"
    fs_qemu "$@"
  fi
}

# FS_BOOTS (harness.sh --env, for debugging): which of the boots to run.
boots=${FS_BOOTS:-qemu vessel-raw vessel-qcow2}
want() { case " $boots " in *" $1 "*) return 0 ;; esac; return 1; }
: >$W/qemu.warn
# The time limits: half of what the payload has (lib.sh: FS_BOOT_TIMEOUT) for the first
# pair, the rest for the 2-vCPU boot.
budget=$FS_BOOT_TIMEOUT
echo "boots: $boots (within ${budget} s)"

# vessel-qcow2's NIC: tap fs0, whose L1 end 10.4.0.1 serves /token.
if want vessel-qcow2; then
  mkdir -p $W/www; token=tok$$$(date +%s); echo "$token" >$W/www/token
  httpd -p 8080 -h $W/www
fi
t1=$(date +%s)
FS_BOOT_TIMEOUT=$((budget / 2)) pids=
# The reference: QEMU/KVM, 1 vCPU, raw disk (its own copy), poweroff.
if want qemu; then fs_qemu_retry $W/qemu.log 1 /dev/vdc poweroff & pids="$pids $!"; fi
# vessel, 1 vCPU, raw, poweroff.
if want vessel-raw; then fs_vessel_retry $W/v1.log 1 /dev/vda poweroff & pids="$pids $!"; fi
[ -z "$pids" ] || wait $pids
# vessel, 2 vCPUs, qcow2, virtio-net on tap fs0 (set up once vessel made it), reboot.
if want vessel-qcow2; then
  FS_BOOT_TIMEOUT=$((budget - ($(date +%s) - t1)))
  # (again for a boot made once more: vessel makes the tap anew, without the address)
  ( while :; do
      if ! ip link show fs0 >/dev/null 2>&1; then sleep 0.1
      elif ! ip -4 addr show dev fs0 | grep -q 10.4.0.1; then ip addr add 10.4.0.1/24 dev fs0; ip link set fs0 up
      else sleep 1
      fi
    done ) & tap_setup=$!
  fs_vessel_retry $W/v2.log 2 /dev/vdb reboot --net tap=fs0,mac=52:54:00:f5:00:02
  kill $tap_setup 2>/dev/null
fi
t2=$(date +%s)
echo "all boots ended after $((t2 - t1)) s"

if want qemu; then
  fs_result $W/qemu.log
  echo "qemu: exit $fs_rc, marker after ${fs_marker_ms} ms, exit after ${fs_end_ms} ms"
  tr -d '\r' <$W/qemu.log | grep -E '^FS-' | grep -v '^FS-DMESG' | sed 's/^/qemu| /'
  detail="QEMU did not boot the image to the marker (image or nested KVM broken?)"
  check qemu-reference grep -q '^FS-DONE' $W/qemu.log || tr -d '\r' <$W/qemu.log | tail -n 40 | sed 's/^/qemu| /'
  warnings $W/qemu.log >$W/qemu.warn
  echo "qemu: $(grep -c . $W/qemu.warn) distinct kernel warning lines (the baseline)"
fi

if want vessel-raw; then
  fs_result $W/v1.log
  echo "vessel-1cpu-raw: exit $fs_rc, marker after ${fs_marker_ms} ms, exit after ${fs_end_ms} ms"
  check_boot vessel-1cpu-raw $W/v1.log 1 "$t1" "$t2"
  detail="vessel exit $fs_rc, want 0"; check vessel-1cpu-raw-poweroff-exit-0 [ "$fs_rc" = 0 ]
fi

if want vessel-qcow2; then
  fs_result $W/v2.log
  echo "vessel-2cpu-qcow2-net: exit $fs_rc, marker after ${fs_marker_ms} ms, exit after ${fs_end_ms} ms"
  check_boot vessel-2cpu-qcow2 $W/v2.log 2 "$t1" "$t2"
  net=$(field $W/v2.log FS-NET-TOKEN); detail="$(field $W/v2.log FS-NET) $net, want $token"
  check vessel-2cpu-qcow2-net [ "$net" = "FS-NET-TOKEN $token" ]
  detail="vessel exit $fs_rc, want 3"; check vessel-2cpu-qcow2-reboot-exit-3 [ "$fs_rc" = 3 ]
fi
exit 0
