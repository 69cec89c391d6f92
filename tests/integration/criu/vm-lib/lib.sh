# Helpers for the CRIU checks in L1 (sourced from /extra/vm-lib/lib.sh).
R=/run/criu-vessel            # our own state root
B=/tmp/criu-bundle            # busybox bundle whose process counts in memory
V="vessel --root $R"

# The counter: a shell variable incremented every 0.1 s and written to /count. The file
# is never renamed: a dump may catch the shell with /count open, and a restore reopens
# it by path (an image restored after the rootfs moved on still finds it).
COUNTER='i=0; while :; do i=$((i+1)); echo $i >/count; sleep 0.1; done'

# The count in file $1 (0 when not there yet); a read that lands between the shell's
# truncate and write is read again.
read_count() {
  for _ in 1 2 3 4 5; do
    c=$(cat "$1" 2>/dev/null)
    [ -n "$c" ] && { echo "$c"; return; }
    sleep 0.02
  done
  echo 0
}

# The bundle: static busybox with its applets, a config whose process runs the counter.
make_bundle() {
  [ -f $B/config.json ] && return 0
  mkdir -p $B/rootfs/bin $B/rootfs/tmp
  cp /bin/busybox $B/rootfs/bin/busybox
  /bin/busybox --install -s $B/rootfs/bin
  (cd $B && vessel spec) || return 1
  sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"readonly": true/"readonly": false/' \
    -e 's|^\( *\)"sh"$|\1"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i >/count; sleep 0.1; done"|' \
    $B/config.json
  grep -q 'echo $i >/count' $B/config.json || { echo "could not edit $B/config.json"; return 1; }
}

# Milliseconds since boot, from /proc/uptime (busybox date has no %N).
now_ms() { read -r up _ </proc/uptime; echo $(( ${up%.*} * 1000 + (1${up#*.} - 100) * 10 )); }

# The counter's last value (0 when not there yet).
count() { read_count $B/rootfs/count; }

# Waits until the count reaches $1 (at most ~10 s); fails otherwise.
wait_count() {
  n=0
  while [ "$(count)" -lt "$1" ]; do
    n=$((n + 1)); [ $n -gt 100 ] && { echo "count stuck at $(count), wanted $1"; return 1; }
    sleep 0.1
  done
}

# Starts container $1 detached with pipes as its stdio (as containerd and conmon give
# it): CRIU cannot dump an fd on a file of the host's mount namespace.
start_counter() {
  rm -f $B/rootfs/count
  (: | $V run -d -b $B "$1" 2>&1 | cat >/tmp/criu-$1.out) &
  wait_count 3
}

# Restores container $1 from image $2 (extra flags after), detached, stdio pipes.
restore_counter() {
  id=$1 img=$2; shift 2
  echo 0 >$B/rootfs/count  # not removed: the image may have it open; 0 until the restored counter writes
  (: | $V restore -d -b $B --image-path "$img" "$@" "$id" 2>&1 | cat >/tmp/criu-restore-$id.out) &
  n=0
  while ! $V state "$id" 2>/dev/null | grep -q '"running"'; do
    n=$((n + 1)); [ $n -gt 100 ] && { echo "restore of $id never ran:"; cat /tmp/criu-restore-$id.out; return 1; }
    sleep 0.1
  done
}

# After restore_counter: the count must resume just after $1 (the value at the dump, or
# just before it with --leave-running), not
# restart from 1 (a new process) or go on from another timeline.
expect_resumed() {
  wait_count 1 || return 1
  first=$(count)
  if [ "$first" -le "$1" ] || [ "$first" -gt $(($1 + 100)) ]; then
    echo "count after restore is $first, the dump was at $1: not resumed"; return 1
  fi
  wait_count $((first + 3)) || return 1
  echo "count resumed at $first after the dump at $1"
}

# The container's cgroup directory (empty when there is none).
cgroup_of() { ls -d /sys/fs/cgroup/vessel/"$1"-* 2>/dev/null; }

# Fails when anything of container $1 is left: state, cgroup, criu-root mount.
nothing_left() {
  if $V state "$1" >/dev/null 2>&1; then echo "state of $1 left"; return 1; fi
  if [ -n "$(cgroup_of "$1")" ]; then echo "cgroup of $1 left: $(cgroup_of "$1")"; return 1; fi
  if grep -q criu-root /proc/mounts; then echo "criu-root mount left"; return 1; fi
  return 0
}

# Prints the end of the logs CRIU wrote in directory $1, for a failure.
criu_log() { for f in "$1"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 25 "$f"; }; done; }

# Removes the given containers when the check ends (a failed check must not leave a
# counter running that the next check would read).
cleanup_on_exit() {
  CLEANUP_IDS="$*"
  trap 'for i in $CLEANUP_IDS; do $V delete --force $i >/dev/null 2>&1; done' EXIT
}

# The steps of CRIU log $1 that took longer than 0.3 s (the line after each gap), to see
# where a slow dump or restore spends its time.
criu_slow_steps() {
  awk -F'[()]' '/^\([ 0-9.]+\)/ { t = $2 + 0; if (NR > 1 && t - last > 0.3) printf "  +%.2fs before: %s\n", t - last, substr($0, 1, 150); last = t }' "$1"
}
