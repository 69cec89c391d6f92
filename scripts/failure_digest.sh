#!/bin/bash
# Prints, for each test the last ctest run in BUILD_DIR failed, the lines of its output that say
# why (gtest failures, FAIL/NOTE/error lines, the harness's own lines) and the output's last
# lines. scripts/test.sh prints it last when a test failed, so that the end of a long CI log,
# the part that is kept, names the failing check and not only the test.
#   scripts/failure_digest.sh [BUILD_DIR]   (default: build)
set -uo pipefail
dir=${1:-build}/Testing/Temporary
[[ -s $dir/LastTestsFailed.log && -f $dir/LastTest.log ]] || exit 0
echo "=== failure digest: why each failed test failed (its whole output is above) ==="
while IFS=: read -r _ name; do
  [[ -n $name ]] || continue
  echo "--- $name"
  # The test's output is between its "Output:" header and "<end of output>".
  awk -v name="$name" '
    $0 ~ "^[0-9]+/[0-9]+ Testing: " && $3 == name { found = 1; next }
    found && !inside && /^Output:/ { inside = 1; getline; next }
    inside && /^<end of output>/ { exit }
    inside { print }
  ' "$dir/LastTest.log" >"$dir/digest.$$"
  grep -n -A 3 -E '\[  FAILED  \]|Failure$|^(.*: )?(FAIL|NOTE|error|ERROR)\b|Expected|Which is|Value of|vmharness:|VESSEL-HARNESS-RC|Timeout|timed out|Killed|Segmentation|Abort' \
    "$dir/digest.$$" | head -n 80
  echo "--- last lines of $name:"
  tail -n 15 "$dir/digest.$$"
  rm -f "$dir/digest.$$"
done <"$dir/LastTestsFailed.log"
