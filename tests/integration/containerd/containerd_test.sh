#!/bin/bash
# containerd drives an OCI runtime: a containerd of the test's own runs tasks of
# a busybox image through its runc shim (io.containerd.runc.v2, the shim that
# Kubernetes' CRI uses too) with `ctr run --runc-binary RUNTIME`.
#
# usage: containerd_test.sh RUNTIME_BINARY     (vessel, or runc to check the checks)
#
# containerd's root, state, socket, the runtime's --root and the image live in a
# temp dir, in a containerd namespace of the test's own (also the name of the
# tasks' parent cgroup). The runtime is reached through a wrapper that logs every
# invocation (printed when a check fails). On exit, even on failure, tasks are
# killed and deleted, containerd stopped, shims left behind killed, mounts and
# cgroups removed and the temp dir deleted.
#
# One line per check (PASS name / FAIL name: why), then the totals.
# Exits 77 (skip) when containerd or busybox-static is missing or when not root.
set -euo pipefail

runtime=${1:?usage: containerd_test.sh RUNTIME_BINARY}
busybox=${BUSYBOX:-/bin/busybox}
timeout_s=${CONTAINERD_TEST_TIMEOUT:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root"
command -v containerd >/dev/null || skip "containerd is not installed"
command -v ctr >/dev/null || skip "ctr is not installed (containerd)"
command -v containerd-shim-runc-v2 >/dev/null || skip "containerd-shim-runc-v2 is not installed (containerd)"
[[ -x $busybox ]] || skip "$busybox (busybox-static) is missing"
command -v script >/dev/null || skip "script (bsdutils) is missing"
[[ -x $runtime ]] || { echo "FAIL setup: $runtime is not executable"; echo "0 passed, 1 failed"; exit 1; }
runtime=$(readlink -f "$runtime")

tmp=$(mktemp -d /tmp/vessel-ctrd.XXXXXX)
# shellcheck source=engine_lib.sh
source "$here/engine_lib.sh"

ns=vessel-ctrd-${tmp##*.}
runtime_root=$tmp/runtime-root
argv_log=$tmp/runtime-argv.log
img=docker.io/library/vessel-busybox:test

c() { timeout "$timeout_s" ctr --address "$ctrd_sock" --namespace "$ns" "$@"; }
# run ARGS...: ctr run with the runtime under test.
run() { c run --runc-binary "$tmp/bin/testrt" --runc-root "$runtime_root" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [[ -S ${ctrd_sock:-} ]]; then
    local t
    for t in $(c task ls -q 2>/dev/null); do
      c task kill -s KILL "$t" >/dev/null 2>&1
      c task delete --force "$t" >/dev/null 2>&1
    done
    for t in $(c container ls -q 2>/dev/null); do c container rm "$t" >/dev/null 2>&1; done
  fi
  [[ -n ${ctrd_sock:-} ]] && kill_shims "$ctrd_sock"
  [[ -n ${ctrd_pid:-} ]] && stop_pid "$ctrd_pid" 10
  local id
  # The shim gives the runtime --root <runc-root>/<namespace>.
  for id in $(ls "$runtime_root/$ns" 2>/dev/null); do
    "$runtime" --root "$runtime_root/$ns" delete --force "$id" >/dev/null 2>&1
  done
  unmount_under "$tmp"
  remove_cgroups "$ns"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup ------------------------------------------------------------------
mkdir -p "$tmp/bin" "$runtime_root"
cat >"$tmp/bin/testrt" <<EOF
#!/bin/bash
printf '%s\n' "\$(basename "$runtime") \$*" >>"$argv_log"
exec "$runtime" "\$@"
EOF
chmod +x "$tmp/bin/testrt"

start_containerd "$tmp/ctrd" || { fail setup "containerd did not start"; exit 1; }

build_rootfs "$tmp/rootfs"
oci_archive "$tmp/rootfs" "$tmp/image.tar" "$img"
capture c image import "$tmp/image.tar"
if [[ $rc == 0 ]] && c image ls -q | grep -qxF "$img"; then pass image-import
else fail image-import "ctr image import exited $rc: $err"; exit 1; fi

# task_status ID: RUNNING, PAUSED, STOPPED... as `ctr task ls` shows it.
task_status() { c task ls 2>/dev/null | awk -v id="$1" '$1 == id { print $3 }' || true; }
wait_status() {
  for _ in $(seq 1 100); do
    [[ $(task_status "$1") == "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}

# --- ctr run ------------------------------------------------------------------
capture run --rm "$img" t-echo echo hi
if [[ $rc == 0 && $out == hi ]]; then pass run-rm; else fail run-rm "exit $rc, stdout '$out', stderr: $err"; fi

capture run --rm "$img" t-exit sh -c 'exit 3'
if [[ $rc == 3 ]]; then pass exit-status; else fail exit-status "exit $rc, want 3: $err"; fi

capture run --rm "$img" t-missing no-such-command
if [[ $rc != 0 && $err == *"executable file not found"* ]]; then pass run-not-found
else fail run-not-found "exit $rc, stderr: $err"; fi

# A network namespace the runtime creates (ctr's default) has its loopback up.
capture run --rm "$img" t-lo sh -c 'ls /sys/class/net | tr "\n" " "; ip -o link show lo; ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-ok'
if [[ $rc == 0 && $out == "lo "* && $out == *"<LOOPBACK,UP"* && $out == *ping-ok* ]]; then pass loopback-up
else fail loopback-up "exit $rc, stdout '$(echo "$out" | tr '\n' ' ')': $err"; fi

host_ifs=$(ls /sys/class/net | tr '\n' ' ')
capture run --rm --net-host "$img" t-host sh -c 'ls /sys/class/net | tr "\n" " "'
if [[ $rc == 0 && $out == "$host_ifs" ]]; then pass net-host
else fail net-host "exit $rc, interfaces '$out', host's '$host_ifs': $err"; fi

capture script -qfec "ctr --address $ctrd_sock --namespace $ns run --runc-binary $tmp/bin/testrt --runc-root $runtime_root --rm -t $img t-tty sh -c 'test -t 0 && echo tty-ok; tty'" /dev/null
if [[ $rc == 0 && $out == *tty-ok* && $out == */dev/pts/* ]]; then pass run-tty
else fail run-tty "exit $rc, stdout '$(echo "$out" | tr -d '\r' | tr '\n' ' ')': $err"; fi

# Resource flags reach the cgroup.
capture run -d --memory-limit 67108864 --cpu-quota 20000 --cpu-period 100000 "$img" t-res2 sleep 300
if [[ $rc == 0 ]] && wait_status t-res2 RUNNING; then
  pid=$(c task ls | awk '$1 == "t-res2" { print $2 }' || true)
  files="$(cgroup_file_of "$pid" memory memory.limit_in_bytes memory.max) $(cgroup_file_of "$pid" cpu cpu.cfs_quota_us) $(cgroup_file_of "$pid" cpu cpu.shares cpu.weight)"
  if [[ $files == "67108864 20000 1024" || $files == "67108864 20000 100" ]]; then pass resources
  else fail resources "cgroup memory/quota/shares: '$files', want '67108864 20000 1024'"; fi
  c task kill -s KILL t-res2 >/dev/null 2>&1 || true
  c task delete --force t-res2 >/dev/null 2>&1 || true
  c container rm t-res2 >/dev/null 2>&1 || true
else
  fail resources "run -d exited $rc: $err"
fi

# --- a detached task: exec, pause/resume, metrics, kill, kill after exit -------
capture run -d "$img" t-main sh -c 'while true; do sleep 1; done'
if [[ $rc == 0 ]] && wait_status t-main RUNNING; then
  pass run-detached

  capture c task exec --exec-id e1 t-main echo inside
  if [[ $rc == 0 && $out == inside ]]; then pass task-exec; else fail task-exec "exit $rc, stdout '$out': $err"; fi

  capture c task exec --exec-id e2 t-main sh -c 'exit 4'
  if [[ $rc == 4 ]]; then pass task-exec-status; else fail task-exec-status "exit $rc, want 4: $err"; fi

  capture c task exec --exec-id e3 t-main no-such-command
  if [[ $rc != 0 && $err == *"executable file not found"* ]]; then pass task-exec-not-found
  else fail task-exec-not-found "exit $rc, stderr: $err"; fi

  capture script -qfec "ctr --address $ctrd_sock --namespace $ns task exec -t --exec-id e4 t-main sh -c 'test -t 0 && echo tty-ok'" /dev/null
  if [[ $rc == 0 && $out == *tty-ok* ]]; then pass task-exec-tty
  else fail task-exec-tty "exit $rc, stdout '$(echo "$out" | tr -d '\r' | tr '\n' ' ')': $err"; fi

  capture c task ps t-main
  if [[ $rc == 0 && $(echo "$out" | wc -l) -ge 2 ]]; then pass task-ps; else fail task-ps "exit $rc, stdout '$out': $err"; fi

  capture c task pause t-main
  if [[ $rc == 0 ]] && wait_status t-main PAUSED; then pass pause
  else fail pause "exit $rc, status '$(task_status t-main)': $err"; fi
  capture c task resume t-main
  if [[ $rc == 0 ]] && wait_status t-main RUNNING; then pass resume
  else fail resume "exit $rc, status '$(task_status t-main)': $err"; fi

  capture c task metrics t-main
  if [[ $rc == 0 && $out == *memory* && $out == *pids* ]]; then pass metrics
  else fail metrics "exit $rc, stdout '$(echo "$out" | tr '\n' ' ' | cut -c1-300)': $err"; fi

  capture c task kill -s KILL t-main
  if [[ $rc == 0 ]] && wait_status t-main STOPPED; then pass kill
  else fail kill "exit $rc, status '$(task_status t-main)': $err"; fi

  # Killing a task that has exited: containerd's shim recognises runc's wording
  # ("container not running") and answers "not found", not an unknown error.
  capture c task kill -s KILL t-main
  if [[ $rc != 0 && $err == *"not found"* && $err != *unknown* ]]; then pass kill-after-exit
  else fail kill-after-exit "exit $rc, stderr: $err"; fi

  capture c task delete t-main
  if [[ $rc == 0 ]]; then pass task-delete; else fail task-delete "exit $rc: $err"; fi
  c container rm t-main >/dev/null 2>&1 || true
else
  fail run-detached "exit $rc, stdout '$out', status '$(task_status t-main)': $err"
fi

# --- nothing left ---------------------------------------------------------------
left=$(ls -A "$runtime_root/$ns" 2>/dev/null | { grep -vx '.seccomp-cache' || true; } | tr '\n' ' ')
tasks=$(c task ls -q 2>/dev/null | tr '\n' ' ' || true)
if [[ -z ${left// /} && -z ${tasks// /} ]]; then pass nothing-left
else fail nothing-left "tasks: '$tasks', runtime state: '$left'"; fi

if [[ $failed != 0 ]]; then
  echo "--- runtime invocations ---"
  tail -60 "$argv_log" 2>/dev/null || true
  echo "--- containerd log (errors) ---"
  grep -i 'level=error' "$tmp/ctrd/containerd.log" | tail -20 || true
  echo "---"
fi
summary
