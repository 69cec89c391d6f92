# Loads the modules CRIU probes for (staged by run_harness.sh) and checks that CRIU
# can work on this kernel: `criu check` must pass, or every other check is meaningless.
for ko in /extra/criu-modules/*.ko; do
  [ -e "$ko" ] || continue
  insmod "$ko" 2>/dev/null || echo "insmod $(basename "$ko") failed (built in or already loaded?)"
done
out=$(criu check 2>&1); rc=$?
echo "$out" | tail -n 5
[ $rc -eq 0 ] || { echo "criu check failed (rc $rc): $(echo "$out" | grep Error | tail -n 1)"; exit 1; }
criu check --feature mem_dirty_track >/dev/null 2>&1 && echo "mem_dirty_track: yes" || echo "mem_dirty_track: no"
echo "criu check passed: $(criu --version | head -n 1)"
