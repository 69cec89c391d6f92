#!/bin/sh
# shellcheck disable=SC2016,SC2153  # container scripts are single-quoted on purpose; BUSYBOX comes from the caller
# Cgroup behaviour of vessel containers on whatever cgroup layout the host has
# (written for a pure cgroup v2 host such as the VM harness's L1, where only
# busybox and the vessel binary exist; it also runs on v1 and hybrid hosts).
#
# usage: cgroup_checks.sh [VESSEL_BINARY]   (default: vessel on PATH, as in the
#        VM harness's L1 where run-checks.sh calls checks as `sh FILE`)
#
# Builds a busybox rootfs and a minimal config.json of its own, runs each check
# through the real binary and prints one line per check:
#   VESSEL-CHECK <name> PASS|FAIL <why>
# then "VESSEL-CHECKS <passed> passed, <failed> failed". Exit status 0 when all
# passed, 1 otherwise, 77 when it cannot run (not root, no busybox).
# busybox sh compatible: no bashisms, no jq.

vessel=${1:-$(command -v vessel)}
# The busybox binary: $BUSYBOX, the usual places, else the shell running us
# (under busybox sh, /proc/$$/exe is busybox itself).
busybox=$BUSYBOX
for b in /bin/busybox /usr/bin/busybox /sbin/busybox "$(readlink -f /proc/$$/exe)"; do
  [ -n "$busybox" ] && break
  [ -x "$b" ] && "$b" --list >/dev/null 2>&1 && busybox=$b
done

[ "$(id -u)" = 0 ] || { echo "VESSEL-CHECK setup SKIP needs root"; exit 77; }
[ -x "$busybox" ] || { echo "VESSEL-CHECK setup SKIP no busybox at $busybox"; exit 77; }
[ -x "${vessel:-/nonexistent}" ] || { echo "VESSEL-CHECK setup FAIL no vessel binary ('$vessel')"; exit 1; }

tmp=$(mktemp -d /tmp/vessel-cgchecks.XXXXXX)
root=$tmp/state
bundle=$tmp/bundle
rootfs=$bundle/rootfs
passed=0
failed=0

v() { "$vessel" --root "$root" "$@"; }

cleanup() {
  for d in "$root"/*; do
    [ -d "$d" ] && v delete --force "${d##*/}" >/dev/null 2>&1
  done
  [ -n "$events_pid" ] && kill -9 "$events_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

check() {  # check NAME PASS|FAIL WHY
  echo "VESSEL-CHECK $1 $2 $3"
  if [ "$2" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}

# --- rootfs and config -----------------------------------------------------
for d in bin proc dev sys tmp etc; do mkdir -p "$rootfs/$d"; done
cp "$busybox" "$rootfs/bin/busybox"
for a in $("$busybox" --list); do
  [ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"

if grep -q ' - cgroup2 ' /proc/self/mountinfo && ! grep -q ' - cgroup ' /proc/self/mountinfo; then
  layout=v2
elif grep -q ' - cgroup2 ' /proc/self/mountinfo; then
  layout=hybrid
else
  layout=v1
fi
echo "VESSEL-CHECK layout INFO $layout"

# config SCRIPT RESOURCES_JSON [PROCESS_FIELDS]: a container running `sh -c SCRIPT`.
# SCRIPT goes into the JSON as is: write a double quote in it as \". PROCESS_FIELDS
# (e.g. '"capabilities": {...},') are added to the process object.
config() {
  res=${2:-'{}'}
  cat >"$bundle/config.json" <<EOF
{
  "ociVersion": "1.0.2",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh", "-c", "$1"],
    "env": ["PATH=/bin"],
    $3
    "cwd": "/"
  },
  "root": {"path": "rootfs"},
  "hostname": "cgchecks",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
    "resources": $res
  }
}
EOF
}

# start SCRIPT RESOURCES [PROCESS_FIELDS]: runs the container detached as c1 (any old c1 removed first).
start() {
  v delete --force c1 >/dev/null 2>&1
  rm -f "$rootfs"/tmp/*
  config "$1" "$2" "$3"
  v run -d --bundle "$bundle" c1 >"$tmp/run.out" 2>&1
}

# wait_file FILE TENTHS: waits until FILE is non-empty.
wait_file() {
  n=0
  while [ ! -s "$1" ] && [ "$n" -lt "$2" ]; do sleep 0.1; n=$((n + 1)); done
  [ -s "$1" ]
}

# Fields of `events --stats` output (0 when omitted, as runc omits zeros).
stats() { v events --stats c1 2>"$tmp/stats.err"; }
field() {  # field SED_REGEX_WITH_ONE_GROUP JSON
  r=$(echo "$2" | sed -n "s/$1/\\1/p")
  echo "${r:-0}"
}
mem_usage() { field '.*"memory":{[^}]*"usage":{"limit":[0-9]*,"usage":\([0-9]*\).*' "$1"; }
mem_limit() { field '.*"memory":{[^}]*"usage":{"limit":\([0-9]*\).*' "$1"; }
cpu_total() { field '.*"cpu":{"usage":{"total":\([0-9]*\).*' "$1"; }
throttled() { field '.*"throttledPeriods":\([0-9]*\).*' "$1"; }
pids_current() { field '.*"pids":{"current":\([0-9]*\).*' "$1"; }
pids_limit() { field '.*"pids":{[^}]*"limit":\([0-9]*\).*' "$1"; }
now_ms() { awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime; }

# The container's cgroup directory holding CONTROLLER (v1 hierarchy, else v2).
cgroup_dir() {
  pid=$(v state c1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' | head -n 1)
  v1=$(awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$pid/cgroup")
  if [ -n "$v1" ] && [ -d "/sys/fs/cgroup/$1" ]; then
    echo "/sys/fs/cgroup/$1$v1"
  else
    mp=$(awk '$9 == "cgroup2" || $(NF-2) == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
    echo "$mp$(awk -F: '$1 == "0" { print $3 }' "/proc/$pid/cgroup")"
  fi
}

mem32='{"memory": {"limit": 33554432, "swap": 33554432}}'

# --- oom: a child hog is killed (137), events reports oom, the container lives on
if start 'while [ ! -e /tmp/go ]; do sleep 0.05; done; tail /dev/zero; echo $? > /tmp/rc; exec sleep 100' "$mem32"; then
  v events --interval 10s c1 >"$tmp/events.out" 2>"$tmp/events.err" &
  events_pid=$!
  sleep 0.3
  echo go >"$rootfs/tmp/go"
  if ! wait_file "$rootfs/tmp/rc" 100; then
    check oom-kill FAIL "the hog did not end within 10 s"
  elif [ "$(cat "$rootfs/tmp/rc")" != 137 ]; then
    check oom-kill FAIL "the hog exited $(cat "$rootfs/tmp/rc"), want 137"
  else
    check oom-kill PASS "hog killed at 32 MiB, exit 137"
  fi
  n=0
  while ! grep -q '{"type":"oom","id":"c1"}' "$tmp/events.out" && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
  if grep -q '{"type":"oom","id":"c1"}' "$tmp/events.out"; then check oom-event PASS "events printed the oom line"
  else check oom-event FAIL "no oom event: $(head -c 300 "$tmp/events.out") $(head -c 300 "$tmp/events.err")"; fi
  status=$(v state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
  v kill c1 KILL
  n=0
  while kill -0 "$events_pid" 2>/dev/null && [ $n -lt 30 ]; do sleep 0.1; n=$((n + 1)); done
  if kill -0 "$events_pid" 2>/dev/null; then
    check events-ends FAIL "events still running 3 s after the container stopped"
  else
    wait "$events_pid"
    rc=$?
    if [ $rc = 0 ] && [ "$status" = running ]; then check events-ends PASS "exit 0 once stopped; state was $status"
    else check events-ends FAIL "events exit $rc, state after the kill of a child: $status"; fi
  fi
  events_pid=
else
  check oom-kill FAIL "run: $(cat "$tmp/run.out")"
fi

# --- oom-foreground: an OOM-killed init makes `run` exit 137
v delete --force c1 >/dev/null 2>&1
config 'exec tail /dev/zero' "$mem32"
v run --bundle "$bundle" c1 >"$tmp/run.out" 2>&1
rc=$?
if [ $rc = 137 ]; then check oom-foreground PASS "run exited 137"
else check oom-foreground FAIL "run exited $rc: $(head -c 300 "$tmp/run.out")"; fi

# --- pids: a fork bomb stops at the limit
if start '( while true; do sleep 100 & done ) 2>/tmp/err; echo done > /tmp/done; exec sleep 100' '{"pids": {"limit": 16}}'; then
  if ! wait_file "$rootfs/tmp/done" 100; then
    check pids-limit FAIL "the bomb did not stop within 10 s"
  else
    s=$(stats)
    cur=$(pids_current "$s")
    lim=$(pids_limit "$s")
    if ! grep -q "can't fork" "$rootfs/tmp/err"; then
      check pids-limit FAIL "no fork failure reported: $(head -c 200 "$rootfs/tmp/err")"
    elif [ "$lim" != 16 ] || [ "$cur" -gt 16 ] || [ "$cur" -lt 12 ]; then
      check pids-limit FAIL "pids current $cur limit $lim, want 12..16 of 16"
    else
      check pids-limit PASS "$cur processes at limit $lim, forks refused"
    fi
  fi
else
  check pids-limit FAIL "run: $(cat "$tmp/run.out")"
fi

# --- cpu-quota: 20000/100000 holds a spinner near 20 % of one CPU
if start 'while :; do :; done' '{"cpu": {"quota": 20000, "period": 100000}}'; then
  sleep 0.2
  t0=$(cpu_total "$(stats)")
  w0=$(now_ms)
  sleep 1
  s=$(stats)
  t1=$(cpu_total "$s")
  w1=$(now_ms)
  pct=$(( (t1 - t0) / 10000 / (w1 - w0) ))  # ns / ms -> percent
  thr=$(throttled "$s")
  if [ "$pct" -ge 10 ] && [ "$pct" -le 35 ] && [ "$thr" -gt 0 ]; then
    check cpu-quota PASS "${pct}% of a CPU, $thr throttled periods"
  else
    check cpu-quota FAIL "${pct}% of a CPU (want 10-35), $thr throttled periods"
  fi
else
  check cpu-quota FAIL "run: $(cat "$tmp/run.out")"
fi

# --- pause: a counter stops while paused and goes on after resume
if start 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; done' ''; then
  wait_file "$rootfs/tmp/n" 50
  sleep 0.2
  v pause c1
  st=$(v state c1 | sed -n 's/.*"status": *"\([a-z]*\)".*/\1/p')
  a=$(cat "$rootfs/tmp/n")
  sleep 0.3
  b=$(cat "$rootfs/tmp/n")
  v resume c1
  sleep 0.5
  c=$(cat "$rootfs/tmp/n")
  if [ "$st" = paused ] && [ "$a" = "$b" ] && [ "$c" -gt "$b" ]; then
    check pause-resume PASS "held at $b while paused, $c after resume"
  else
    check pause-resume FAIL "state '$st', counter $a -> $b while paused, $c after resume"
  fi
else
  check pause-resume FAIL "run: $(cat "$tmp/run.out")"
fi

# --- update: --memory changes the live limit
if start 'exec sleep 100' '{"memory": {"limit": 67108864}}'; then
  out=$(v update --memory 50331648 c1 2>&1)
  d=$(cgroup_dir memory)
  if [ -f "$d/memory.limit_in_bytes" ]; then f=$d/memory.limit_in_bytes; else f=$d/memory.max; fi
  got=$(cat "$f" 2>/dev/null)
  rep=$(mem_limit "$(stats)")
  if [ "$got" = 50331648 ] && [ "$rep" = 50331648 ]; then check update-memory PASS "$f = $got"
  else check update-memory FAIL "$f = '$got', stats limit $rep, want 50331648 ($out)"; fi
else
  check update-memory FAIL "run: $(cat "$tmp/run.out")"
fi

# --- stats: memory usage grows after the process allocates 20 MB
if start "while [ ! -e /tmp/go ]; do sleep 0.05; done; awk 'BEGIN { s = sprintf(\\\"%20000000s\\\", \\\"x\\\"); print 1 > \\\"/tmp/alloc\\\"; close(\\\"/tmp/alloc\\\"); system(\\\"sleep 100\\\") }'" ''; then
  before=$(mem_usage "$(stats)")
  echo go >"$rootfs/tmp/go"
  if wait_file "$rootfs/tmp/alloc" 50; then
    after=$(mem_usage "$(stats)")
    if [ "$after" -gt $((before + 15000000)) ]; then check stats-memory PASS "usage $before -> $after"
    else check stats-memory FAIL "usage $before -> $after, want +15 MB"; fi
  else
    check stats-memory FAIL "the allocation did not happen: $(cat "$tmp/stats.err")"
  fi
else
  check stats-memory FAIL "run: $(cat "$tmp/run.out")"
fi

# --- devices: linux.resources.devices is enforced (v2: the eBPF device program; v1:
# the devices controller). The container makes c 60:0 (a "local/experimental" major
# with no driver); the rules allow only the defaults, so opening it must fail with
# EPERM from the cgroup (an allowed open fails with ENXIO: no driver), while /dev/null
# works. `update` with device rules in its resources then changes nothing, as runc's
# (device rules come from the config only).
mknod_cap='"capabilities": {"bounding": ["CAP_MKNOD"], "effective": ["CAP_MKNOD"], "permitted": ["CAP_MKNOD"]},'
devscript='try() { head -c 1 $1 >/dev/null 2>/tmp/err; echo \"rc=$? $(cat /tmp/err)\"; }; all() { try /dev/exp; echo hi >/dev/null && try /dev/null; try /dev/zero; }; '
devscript="$devscript"'mknod /dev/exp c 60 0 2>/tmp/mknod.err || echo failed >>/tmp/mknod.err; all >/tmp/before.new; mv /tmp/before.new /tmp/before; '
devscript="$devscript"'while [ ! -e /tmp/go ]; do sleep 0.05; done; all >/tmp/after.new; mv /tmp/after.new /tmp/after; exec sleep 100'
line() { echo "$1" | sed -n "$2p"; }
if start "$devscript" '{"devices": [{"allow": false, "access": "rwm"}]}' "$mknod_cap"; then
  if ! wait_file "$rootfs/tmp/before" 50; then
    check devices FAIL "the container did not report: $(cat "$rootfs/tmp/mknod.err" "$tmp/run.out" 2>&1; v state c1 2>&1 | tr '\n' ' ')"
  else
    b=$(cat "$rootfs/tmp/before")
    echo "before update: $(echo "$b" | tr '\n' '|')"
    if [ -s "$rootfs/tmp/mknod.err" ]; then
      check devices FAIL "mknod c 60 0: $(cat "$rootfs/tmp/mknod.err")"
    elif ! line "$b" 1 | grep -q 'Operation not permitted'; then
      check devices FAIL "open of c 60:0 (not allowed): '$(line "$b" 1)', want Operation not permitted"
    elif [ "$(line "$b" 2)" != "rc=0 " ]; then
      check devices FAIL "/dev/null: '$(line "$b" 2)', want rc=0"
    else
      check devices PASS "c 60:0 denied ($(line "$b" 1)), /dev/null usable"
    fi
    cat >"$tmp/devices.json" <<EOF
{"devices": [{"allow": false, "access": "rwm"},
             {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
             {"allow": true, "type": "c", "major": 60, "minor": 0, "access": "rw"}]}
EOF
    out=$(v update --resources "$tmp/devices.json" c1 2>&1)
    echo go >"$rootfs/tmp/go"
    if ! wait_file "$rootfs/tmp/after" 50; then
      check devices-update FAIL "the container did not report after update ($out)"
    else
      a=$(cat "$rootfs/tmp/after")
      echo "after update: $(echo "$a" | tr '\n' '|')"
      # As runc, `update` leaves the device rules alone (they come from the config):
      # c 60:0 stays denied, the default nodes stay usable.
      if ! line "$a" 1 | grep -q 'Operation not permitted'; then
        check devices-update FAIL "open of c 60:0 after update: '$(line "$a" 1)', want still denied ($out)"
      elif [ "$(line "$a" 2)" != "rc=0 " ] || [ "$(line "$a" 3)" != "rc=0 " ]; then
        check devices-update FAIL "/dev/null '$(line "$a" 2)', /dev/zero '$(line "$a" 3)' (want both rc=0) ($out)"
      else
        check devices-update PASS "update left the device rules alone: c 60:0 still denied, /dev/null and /dev/zero usable"
      fi
    fi
  fi
else
  check devices FAIL "run: $(cat "$tmp/run.out")"
fi

v delete --force c1 >/dev/null 2>&1
echo "VESSEL-CHECKS $passed passed, $failed failed"
[ "$failed" = 0 ]
