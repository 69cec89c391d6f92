#!/bin/bash
# podman drives vessel: `podman --runtime vessel` runs, execs into, stops and
# removes a container of a busybox image built and imported here.
#
# usage: podman_test.sh /path/to/vessel
#
# Everything podman keeps (storage, run state, locks, events) lives in a temp
# dir, with a containers.conf of its own (cgroupfs, file events, no network).
# vessel is reached through a shim named `vessel` that logs each invocation
# (podman and conmon's argv) and gives vessel a --root in the temp dir, so the
# test neither sees nor leaves containers of anyone else. The log is printed
# when a check fails. Exits 77 (skip) when podman or busybox-static is missing.
#
# One line per check (PASS name / FAIL name: why), then "N passed, N failed".
set -euo pipefail

vessel=${1:?usage: podman_test.sh /path/to/vessel}
busybox=${BUSYBOX:-/bin/busybox}
timeout_s=${PODMAN_TEST_TIMEOUT:-60}

skip() { echo "SKIP: $*"; exit 77; }
command -v podman >/dev/null || skip "podman is not installed"
command -v conmon >/dev/null || [[ -x /usr/libexec/podman/conmon ]] || skip "conmon is not installed"
[[ -x $busybox ]] || skip "$busybox (busybox-static) is missing"
[[ $(id -u) == 0 ]] || skip "needs root"
[[ -x $vessel ]] || { echo "FAIL setup: $vessel is not executable"; echo "0 passed, 1 failed"; exit 1; }
vessel=$(readlink -f "$vessel")

tmp=$(mktemp -d /tmp/vessel-podman.XXXXXX)
state=$tmp/vessel-state          # vessel --root
argv_log=$tmp/runtime-argv.log   # one line per runtime / conmon invocation
passed=0 failed=0

pm() {
  CONTAINERS_CONF=$tmp/containers.conf timeout "$timeout_s" podman \
    --root "$tmp/storage" --runroot "$tmp/run" --tmpdir "$tmp/libpod" \
    --storage-driver vfs --runtime "$tmp/bin/vessel" "$@"
}

cleanup() {
  local rc=$?
  set +e
  pm rm --all --force --time 0 >/dev/null 2>&1
  # If vessel could not remove them, podman may have left conmon or the
  # container's processes: end them by the pids their pid files name.
  local f
  for f in "$tmp"/run/vfs-containers/*/userdata/conmon.pid "$tmp"/run/vfs-containers/*/userdata/pidfile; do
    [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null
  done
  local d
  for d in "$state"/*; do
    [[ -d $d ]] && "$vessel" --root "$state" delete --force "${d##*/}" >/dev/null 2>&1
  done
  # Podman mounts a /dev/shm per container under its run dir.
  awk -v p="$tmp/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL $1: $2"
  failed=$((failed + 1))
}

# --- setup: a shim for vessel, a containers.conf, a busybox image ----------
mkdir -p "$tmp/bin" "$state" "$tmp/rootfs"/{bin,dev,proc,sys,etc,tmp}
cat >"$tmp/bin/vessel" <<EOF
#!/bin/bash
printf '%s\n' "vessel \$*" >>"$argv_log"
exec "$vessel" --root "$state" "\$@"
EOF
cat >"$tmp/bin/conmon" <<EOF
#!/bin/bash
printf '%s\n' "conmon \$*" >>"$argv_log"
exec "$(command -v conmon || echo /usr/libexec/podman/conmon)" "\$@"
EOF
chmod +x "$tmp/bin/vessel" "$tmp/bin/conmon"

# The host's hard limit of open files (20000) is below podman's default
# (1048576), so every container gets explicit limits. runtime_supports_json
# makes podman ask for --log-format=json --log FILE, as it does for runc/crun.
cat >"$tmp/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
conmon_path = ["$tmp/bin/conmon"]
runtime_supports_json = ["vessel"]
EOF

cp "$busybox" "$tmp/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [[ -e $tmp/rootfs/bin/$applet ]] || ln -s busybox "$tmp/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/:/bin/sh' >"$tmp/rootfs/etc/passwd"
echo 'root:x:0:' >"$tmp/rootfs/etc/group"
tar -C "$tmp/rootfs" -cf "$tmp/busybox.tar" .
img=localhost/vessel-busybox:test

# --- checks ----------------------------------------------------------------
# Each runs podman, keeping stdout in $out, stderr in $err and the status in $rc.
out='' err='' rc=0
run() {
  rc=0
  out=$(pm "$@" 2>"$tmp/stderr") || rc=$?
  err=$(tr '\n' ' ' <"$tmp/stderr" | cut -c1-600)
}

# cgroup_file CTR CONTROLLER FILE [V2FILE]: a control file of the container's
# cgroup, found through its init's /proc/PID/cgroup (v1 hierarchy named after
# the controller, else the v2 cgroup).
cgroup_file() {
  local pid path v2
  pid=$(pm inspect --format '{{.State.Pid}}' "$1" 2>/dev/null)
  [[ -n $pid && $pid != 0 ]] || return 0
  while IFS=: read -r _ ctrls path; do
    if [[ -z $ctrls ]]; then v2=$path
    elif [[ ,$ctrls, == *",$2,"* && -d /sys/fs/cgroup/$2 ]]; then cat "/sys/fs/cgroup/$2$path/$3"; return 0; fi
  done <"/proc/$pid/cgroup"
  cat "/sys/fs/cgroup$v2/${4:-$3}" 2>/dev/null || true
}

run import "$tmp/busybox.tar" "$img"
if [[ $rc == 0 ]]; then pass import; else fail import "podman import exited $rc: $err"; fi

run run --rm "$img" echo hi
if [[ $rc == 0 && $out == hi ]]; then pass run-rm-echo
else fail run-rm-echo "exit $rc, stdout '$out', stderr: $err"; fi

run run -d "$img" sleep 1000
ctr=$out
if [[ $rc == 0 && $ctr =~ ^[0-9a-f]{64}$ ]]; then
  run inspect --format '{{.State.Status}}' "$ctr"
  if [[ $out == running ]]; then pass run-detach
  else fail run-detach "container is '$out', not running: $err"; fi
else
  fail run-detach "exit $rc, stdout '$ctr', stderr: $err"
  ctr=
fi

if [[ -n $ctr ]]; then
  run exec "$ctr" echo inside
  if [[ $rc == 0 && $out == inside ]]; then pass exec
  else fail exec "exit $rc, stdout '$out', stderr: $err"; fi

  # exec -t: conmon passes --tty --console-socket; the process must see a terminal.
  run exec -t "$ctr" sh -c 'test -t 0 && test -t 1 && echo on-a-tty'
  out=${out//$'\r'/}
  if [[ $rc == 0 && $out == on-a-tty ]]; then pass exec-tty
  else fail exec-tty "exit $rc, stdout '$out', stderr: $err"; fi

  # pause/unpause: vessel pause/resume through podman.
  run pause "$ctr"
  if [[ $rc == 0 ]]; then
    run inspect --format '{{.State.Status}}' "$ctr"
    if [[ $out == paused ]]; then pass pause; else fail pause "container is '$out' after pause: $err"; fi
  else
    fail pause "exit $rc: $err"
  fi
  run unpause "$ctr"
  if [[ $rc == 0 ]]; then
    run inspect --format '{{.State.Status}}' "$ctr"
    if [[ $out == running ]]; then pass unpause; else fail unpause "container is '$out' after unpause: $err"; fi
  else
    fail unpause "exit $rc: $err"
  fi

  # update --memory: podman hands vessel update a resources file; the live
  # cgroup must hold the new limit (v1 memory.limit_in_bytes or v2 memory.max).
  run update --memory 64m "$ctr"
  if [[ $rc == 0 ]]; then
    limit=$(cgroup_file "$ctr" memory memory.limit_in_bytes memory.max)
    if [[ $limit == 67108864 ]]; then pass update-memory
    else fail update-memory "memory limit is '$limit', want 67108864"; fi
  else
    fail update-memory "exit $rc: $err"
  fi

  # stats: podman 4.3 (cgroupfs manager) reads the cgroups of the init's
  # /proc/PID/cgroup itself, not `vessel events`; its memory limit column comes
  # from its stored spec (which its `update` leaves alone), so only usage and
  # pids say whether it found vessel's cgroup.
  run stats --no-stream --format '{{.ID}} {{.MemUsage}} {{.PIDs}}' "$ctr"
  if [[ $rc == 0 && $out == "${ctr:0:12} "*" / "*" 1" && $out != "${ctr:0:12} 0B "* ]]; then pass stats-no-stream
  else fail stats-no-stream "exit $rc, stdout '$out' (want usage > 0B and 1 pid), stderr: $err"; fi

  # top: the container's processes (podman's psgo, or ps inside the container).
  run top "$ctr"
  if [[ $rc == 0 && $out == *"sleep 1000"* ]]; then pass top
  else fail top "exit $rc, stdout '$(echo "$out" | tr '\n' ' ')', stderr: $err"; fi

  # busybox sleep as pid 1 ignores SIGTERM: podman sends SIGKILL after 1 s.
  run stop --time 1 "$ctr"
  if [[ $rc == 0 ]]; then
    run inspect --format '{{.State.Status}}' "$ctr"
    if [[ $out == exited ]]; then pass stop; else fail stop "container is '$out' after stop: $err"; fi
  else
    fail stop "exit $rc: $err"
  fi

  run rm "$ctr"
  if [[ $rc == 0 ]]; then pass rm; else fail rm "exit $rc: $err"; fi
else
  fail exec "no container to exec into (run -d failed)"
  fail stop "no container to stop (run -d failed)"
  fail rm "no container to remove (run -d failed)"
fi

run run --rm "$img" sh -c 'exit 3'
if [[ $rc == 3 ]]; then pass exit-code; else fail exit-code "exit $rc, want 3; stderr: $err"; fi

run ps --all --quiet --no-trunc
if [[ $rc == 0 && -z $out ]]; then pass ps-empty
else fail ps-empty "exit $rc, podman ps -a lists: $(echo "$out" | tr '\n' ' ') $err"; fi

# Every container podman created went through vessel create; none may have
# left its state behind, in the test's root or the default one.
# (.seccomp-cache holds compiled seccomp filters shared by all containers: a cache, not a container's state.)
left=$(ls -A "$state" | grep -vx '.seccomp-cache' || true)
while read -r id; do
  [[ -e /run/vessel/$id ]] && left+=" /run/vessel/$id"
done < <(grep -o 'create .* [0-9a-f]\{64\}$' "$argv_log" 2>/dev/null | grep -o '[0-9a-f]\{64\}$')
if [[ -z ${left// /} ]]; then pass no-state-left
else fail no-state-left "vessel state remains: $left"; fi

if [[ $failed != 0 ]]; then
  echo "--- runtime invocations (podman, conmon) ---"
  cat "$argv_log" 2>/dev/null || true
  echo "---"
fi
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
