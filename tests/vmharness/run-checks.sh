#!/bin/sh
# vessel-run-checks: runs many checks in one boot of the VM harness (installed in the
# L1 initramfs as /usr/local/bin/vessel-run-checks).
#
# Usage: vessel-run-checks [--timeout SEC] PATH...
#   PATH is a check script or a directory; a directory runs its *.sh files in name order.
#   A check is run as `sh FILE` in its own directory; its exit code decides the result:
#     0 -> PASS, 77 -> SKIP, anything else -> FAIL (124: the check timed out).
#   The reason printed for SKIP/FAIL is the last line of the check's output.
# Prints, per check:
#   VESSEL-CHECK-BEGIN <name>
#     | <output of the check, indented>
#   VESSEL-CHECK <name> PASS|FAIL|SKIP <reason>
# and finally "VESSEL-CHECKS <passed> passed, <failed> failed, <skipped> skipped".
# Exits 1 if any check failed, else 0. <name> is the file name without .sh.

timeout=0
if [ "$1" = "--timeout" ]; then timeout=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: vessel-run-checks [--timeout SEC] PATH..." >&2; exit 2; }

passed=0 failed=0 skipped=0
out=$(mktemp /tmp/vessel-check.XXXXXX)

run_one() {
  file=$1
  name=$(basename "$file" .sh)
  echo "VESSEL-CHECK-BEGIN $name"
  if [ "$timeout" -gt 0 ]; then
    (cd "$(dirname "$file")" && timeout -s KILL "$timeout" sh "$file") >"$out" 2>&1 </dev/null
  else
    (cd "$(dirname "$file")" && sh "$file") >"$out" 2>&1 </dev/null
  fi
  rc=$?
  [ "$rc" -eq 137 ] && [ "$timeout" -gt 0 ] && rc=124
  sed 's/^/  | /' "$out"
  reason=$(grep -v '^[[:space:]]*$' "$out" | tail -n 1 | tr -d '\r' | cut -c1-200)
  case $rc in
    0)  passed=$((passed + 1)); echo "VESSEL-CHECK $name PASS" ;;
    77) skipped=$((skipped + 1)); echo "VESSEL-CHECK $name SKIP ${reason:-no reason given}" ;;
    *)  failed=$((failed + 1))
        [ "$rc" -eq 124 ] && reason="timed out after ${timeout}s"
        echo "VESSEL-CHECK $name FAIL exit $rc: ${reason:-no output}" ;;
  esac
}

for path in "$@"; do
  if [ -d "$path" ]; then
    for f in "$path"/*.sh; do [ -f "$f" ] && run_one "$f"; done
  elif [ -f "$path" ]; then
    run_one "$path"
  else
    failed=$((failed + 1))
    echo "VESSEL-CHECK $(basename "$path" .sh) FAIL no such check: $path"
  fi
done
rm -f "$out"

echo "VESSEL-CHECKS $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
