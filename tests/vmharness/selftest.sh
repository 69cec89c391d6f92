#!/usr/bin/env bash
# selftest.sh: checks harness.sh's own contract (ctest vmharness.selftest): exit codes,
# check summaries, timeouts, panics, skips, --env/--extra, and that nothing is left in
# TMPDIR. About a minute.
#
# Usage: selftest.sh VESSEL_BINARY
# Exit codes: 0 pass, 1 fail, 77 skipped (harness.sh cannot run here: it says why).
set -euo pipefail

harness=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/harness.sh
vessel=${1:?usage: selftest.sh VESSEL_BINARY}
work=$(mktemp -d "${TMPDIR:-/tmp}/vessel-harness-selftest.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/tmp" "$work/suite" "$work/extra"
export TMPDIR=$work/tmp   # every run's temp dir lands here; must be empty at the end

failures=0
# expect NAME CODE HARNESS-ARGS...: runs harness.sh, checks its exit code; keeps output
# in $out.
expect() {
  local name=$1 want=$2
  shift 2
  local got=0 t0=$SECONDS
  out=$("$harness" "$@" 2>&1) || got=$?
  if [[ $got == 77 && $want != 77 ]]; then
    echo "$out" | grep SKIP
    exit 77
  fi
  if [[ $got == "$want" ]]; then
    echo "ok   $name (exit $got, $((SECONDS - t0))s)"
  else
    echo "FAIL $name: exit $got, expected $want; output:"
    echo "$out" | tail -n 30 | sed 's/^/     /'
    failures=$((failures + 1))
  fi
}
# contains NAME TEXT: the last run's output contains TEXT.
contains() {
  if grep -qF -- "$2" <<<"$out"; then echo "ok   $1"; else
    echo "FAIL $1: output lacks '$2'"; failures=$((failures + 1)); fi
}

printf 'echo hello; exit 3\n' >"$work/rc3.sh"
expect exit_code_passes_through 3 run --vessel "$vessel" --payload "$work/rc3.sh" --timeout 60
contains console_streamed "hello"

printf 'exit 0\n' >"$work/suite/a_pass.sh"
printf 'echo why not; exit 77\n' >"$work/suite/b_skip.sh"
printf 'echo broken thing; exit 4\n' >"$work/suite/c_fail.sh"
expect failed_check_fails_run 1 run --vessel "$vessel" --payload "$work/suite" --timeout 60
contains summary "1 passed, 1 failed, 1 skipped"
contains fail_reason "c_fail FAIL exit 4: broken thing"
contains skip_reason "b_skip SKIP why not"

echo data >"$work/extra/file"
# shellcheck disable=SC2016 # expanded inside L1
printf '[ "$X" = "a b'"'"'c" ] && [ "$(cat /extra/extra/file)" = data ] && vessel --version\n' >"$work/env.sh"
expect env_extra_vessel 0 run --vessel "$vessel" --payload "$work/env.sh" --timeout 60 \
  --env "X=a b'c" --extra "$work/extra"

printf 'echo 1 > /proc/sys/kernel/sysrq; echo c > /proc/sysrq-trigger; sleep 100\n' >"$work/panic.sh"
expect panic_is_125 125 run --vessel "$vessel" --payload "$work/panic.sh" --timeout 60 --log "$work/panic.log"
contains panic_tail_printed "Kernel panic"
contains panic_runs_again "kernel panicked in the middle of the payload"

VESSEL_HARNESS_BOOT_DEADLINE=1 expect stalled_boot_is_retried 3 run --vessel "$vessel" \
  --payload "$work/rc3.sh" --timeout 60
# Every boot but the last has the deadline: two stall, the third runs the payload.
contains third_boot "(3 boots)"

printf 'sleep 1000\n' >"$work/sleep.sh"
# The in-guest timeout (30 s here) leaves 15 s before QEMU's for the report of what hung.
expect payload_timeout_is_124 124 run --vessel "$vessel" --payload "$work/sleep.sh" --timeout 45
contains stuck_report "VESSEL-HARNESS-STUCK: the payload ran for"
contains stuck_report_lists_the_process "(sleep) state S"
expect qemu_timeout_is_124 124 run --vessel "$vessel" --payload "$work/sleep.sh" --timeout 10 \
  --append vessel.timeout=0
contains qemu_killed "QEMU killed"

# The heartbeat: a payload that is only slow is not taken for a wedged L1; one whose L1
# stops beating (here: COM2 moved away) runs again in a new L1, at most three times, then fails.
# (A short soft lockup on L1's console does not count as a wedge either.)
printf 'echo "<0>watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [selftest:1]" >/dev/kmsg; sleep 25; exit 3\n' >"$work/slow.sh"
VESSEL_HARNESS_WEDGE_SECONDS=10 expect slow_payload_is_not_wedged 3 run --vessel "$vessel" \
  --payload "$work/slow.sh" --timeout 90
printf 'mv /dev/ttyS1 /dev/ttyS1.moved; sleep 1000\n' >"$work/wedge.sh"
VESSEL_HARNESS_WEDGE_SECONDS=10 expect wedged_l1_is_run_again_twice 124 run --vessel "$vessel" \
  --payload "$work/wedge.sh" --timeout 150
contains wedge_second_run "running the payload again in a new L1 (attempt 2 of 3)"
contains wedge_third_run "running the payload again in a new L1 (attempt 3 of 3)"
contains wedge_twice_fails "L1 stopped responding again"

# An L1 whose kernel reports a soft lockup of a minute or more (here: a line written to
# /dev/kmsg) is killed and the payload runs again; locking up every time, the run is a
# timeout (124) long before the timeout.
printf 'echo "<0>watchdog: BUG: soft lockup - CPU#1 stuck for 64s! [selftest:1]" >/dev/kmsg; sleep 1000\n' >"$work/lockup.sh"
VESSEL_HARNESS_ATTEMPTS=2 expect soft_lockup_is_run_again 124 run --vessel "$vessel" \
  --payload "$work/lockup.sh" --timeout 200
contains lockup_second_run "soft lockup of 60s or more (QEMU killed; see the console above); running the payload again in a new L1 (attempt 2 of 2)"
contains lockup_twice_fails "soft lockup of 60s or more again"

# An L1 that resets itself mid-payload (sysrq b: an immediate reboot, no panic) runs the
# payload again; resetting every time, the run fails as a payload that never reported.
printf 'echo 1 > /proc/sys/kernel/sysrq; echo b > /proc/sysrq-trigger; sleep 100\n' >"$work/reset.sh"
expect l1_reset_runs_payload_again 125 run --vessel "$vessel" --payload "$work/reset.sh" --timeout 90
contains l1_reset_note "L1 reset itself in the middle of the payload"

expect usage_is_2 2 run --vessel "$vessel"
expect help_is_0 0 help
contains help_text "Exit codes:"
VESSEL_HARNESS_REQUIRE=0 VESSEL_HARNESS_QEMU=no-such-qemu expect missing_qemu_skips 77 run --vessel "$vessel" --payload "$work/rc3.sh"
VESSEL_HARNESS_REQUIRE=1 VESSEL_HARNESS_QEMU=no-such-qemu expect required_qemu_fails 1 \
  run --vessel "$vessel" --payload "$work/rc3.sh"

if [[ -n $(ls -A "$TMPDIR") ]]; then
  echo "FAIL left behind in TMPDIR: $(ls -A "$TMPDIR")"
  failures=$((failures + 1))
else
  echo "ok   nothing_left_behind"
fi
if pgrep -f -- "-initrd $TMPDIR/" >/dev/null; then
  echo "FAIL a QEMU of this self-test is still running"
  failures=$((failures + 1))
fi

echo "selftest: $failures failure(s)"
[[ $failures == 0 ]]
