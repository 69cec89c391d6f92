#!/bin/bash
# Docker drives an OCI runtime: a dockerd and a containerd of the test's own run
# containers of a busybox image with the runtime given, through containerd's
# runc shim, as Docker users do with `--runtime`.
#
# usage: docker_test.sh RUNTIME_BINARY        (vessel, or runc to check the checks)
#
# Everything lives in a temp dir: containerd's root, state and socket, dockerd's
# data root, exec root, socket and pid file, and a daemon.json with the runtime
# as "testrt" (cgroupfs driver, no iptables, no default bridge, cgroup parent of
# the test's own). The runtime is reached through a wrapper that logs every
# invocation (printed when a check fails). On exit, even on failure, containers
# are removed, dockerd and containerd stopped, shims left behind killed, mounts
# and cgroups removed and the temp dir deleted.
#
# One line per check (PASS name / FAIL name: why), then the totals.
# Exits 77 (skip) when docker.io, containerd or busybox-static is missing or
# when not root.
set -euo pipefail

runtime=${1:?usage: docker_test.sh RUNTIME_BINARY}
busybox=${BUSYBOX:-/bin/busybox}
timeout_s=${DOCKER_TEST_TIMEOUT:-60}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root"
command -v dockerd >/dev/null || skip "dockerd is not installed (docker.io)"
command -v containerd >/dev/null || skip "containerd is not installed"
command -v containerd-shim-runc-v2 >/dev/null || skip "containerd-shim-runc-v2 is not installed (containerd)"
# The docker CLI of the docker.io package, not another one earlier in PATH.
docker_cli=/usr/bin/docker
[[ -x $docker_cli ]] || docker_cli=$(command -v docker) || skip "the docker CLI is not installed (docker.io)"
[[ -x $busybox ]] || skip "$busybox (busybox-static) is missing"
command -v script >/dev/null || skip "script (bsdutils) is missing"
[[ -x $runtime ]] || { echo "FAIL setup: $runtime is not executable"; echo "0 passed, 1 failed"; exit 1; }
runtime=$(readlink -f "$runtime")

tmp=$(mktemp -d /tmp/vessel-docker.XXXXXX)
chmod 0711 "$tmp"
# shellcheck source=../containerd/engine_lib.sh
source "$here/../containerd/engine_lib.sh"

tag=${tmp##*.}
cgroup_parent=vessel-docker-$tag
argv_log=$tmp/runtime-argv.log
exec_root=$tmp/x            # short: containerd's shim sockets live below it
docker_sock=$tmp/docker.sock
img=vessel-busybox:test
net=vessel-docker-$tag
dockerd_pid=

dk() { timeout "$timeout_s" "$docker_cli" -H "unix://$docker_sock" "$@"; }

cleanup() {
  local rc=$?
  set +e
  if [[ -S $docker_sock ]]; then
    local ids
    ids=$(dk ps -aq 2>/dev/null)
    [[ -n $ids ]] && dk rm -f $ids >/dev/null 2>&1
    dk network rm "$net" >/dev/null 2>&1
  fi
  [[ -n $dockerd_pid ]] && stop_pid "$dockerd_pid" 20
  [[ -n ${ctrd_sock:-} ]] && kill_shims "$ctrd_sock"
  [[ -n ${ctrd_pid:-} ]] && stop_pid "$ctrd_pid" 10
  # Containers the runtime still knows (it failed to remove them): delete them with it.
  local root id
  for root in $(grep -o -- '--root [^ ]*' "$argv_log" 2>/dev/null | cut -d' ' -f2 | sort -u); do
    for id in $(ls "$root" 2>/dev/null); do "$runtime" --root "$root" delete --force "$id" >/dev/null 2>&1; done
  done
  unmount_under "$tmp"
  remove_cgroups "$cgroup_parent"
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup ------------------------------------------------------------------
mkdir -p "$tmp/bin" "$exec_root"
cat >"$tmp/bin/testrt" <<EOF
#!/bin/bash
printf '%s\n' "\$(basename "$runtime") \$*" >>"$argv_log"
exec "$runtime" "\$@"
EOF
chmod +x "$tmp/bin/testrt"

start_containerd "$tmp/ctrd" || { fail setup "containerd did not start"; exit 1; }

cat >"$tmp/daemon.json" <<EOF
{
  "runtimes": {"testrt": {"path": "$tmp/bin/testrt"}},
  "default-runtime": "testrt",
  "iptables": false,
  "ip-forward": false,
  "ip-masq": false,
  "bridge": "none",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "cgroup-parent": "/$cgroup_parent",
  "storage-driver": "overlay2",
  "log-driver": "json-file",
  "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 20000, "Hard": 20000}}
}
EOF
dockerd --config-file "$tmp/daemon.json" --data-root "$tmp/data" --exec-root "$exec_root" \
  -H "unix://$docker_sock" --pidfile "$tmp/dockerd.pid" --containerd "$ctrd_sock" \
  >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 150); do
  dk version >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || break
  sleep 0.2
done
if ! dk version >/dev/null 2>&1; then
  fail setup "dockerd did not start; its log: $(tail -5 "$tmp/dockerd.log" | tr '\n' ' ')"
  exit 1
fi

build_rootfs "$tmp/rootfs"
tar --numeric-owner -C "$tmp/rootfs" -cf "$tmp/busybox.tar" .
capture dk import "$tmp/busybox.tar" "$img"
if [[ $rc == 0 ]]; then pass import; else fail import "docker import exited $rc: $err"; exit 1; fi

# inspect CTR FORMAT
inspect() { dk inspect --format "$2" "$1" 2>/dev/null || true; }
# wait_state CTR STATUS: until docker reports STATUS (10 s).
wait_state() {
  for _ in $(seq 1 100); do
    [[ $(inspect "$1" '{{.State.Status}}') == "$2" ]] && return 0
    sleep 0.1
  done
  return 1
}
# The runtime's --root for Docker's containers, from the wrapper's log.
runtime_root() { grep -o -- '--root [^ ]*' "$argv_log" | tail -1 | cut -d' ' -f2 || true; }

# --- run --rm and exit statuses ---------------------------------------------
capture dk run --rm "$img" echo hi
if [[ $rc == 0 && $out == hi ]]; then pass run-rm; else fail run-rm "exit $rc, stdout '$out', stderr: $err"; fi

# expect_exit NAME WANT ARGS...: docker run's own exit status.
expect_exit() {
  local name=$1 want=$2
  shift 2
  capture dk run --rm "$@"
  if [[ $rc == "$want" ]]; then pass "$name"; else fail "$name" "exit $rc, want $want; stdout '$out', stderr: $err"; fi
}
expect_exit exit-0 0 "$img" true
expect_exit exit-3 3 "$img" sh -c 'exit 3'
expect_exit exit-127-not-found 127 "$img" no-such-command
expect_exit exit-127-no-such-path 127 "$img" /no/such/file
expect_exit exit-126-not-executable 126 "$img" /bin/not-executable

# 137: docker kill (SIGKILL) of a running container.
capture dk run -d "$img" sleep 300
if [[ $rc == 0 ]]; then
  ctr=$out
  dk kill "$ctr" >/dev/null 2>&1 || true
  dk wait "$ctr" >/dev/null 2>&1 || true
  code=$(inspect "$ctr" '{{.State.ExitCode}}')
  if [[ $code == 137 ]]; then pass exit-137-sigkill; else fail exit-137-sigkill "exit code '$code', want 137"; fi
  dk rm -f "$ctr" >/dev/null 2>&1 || true
else
  fail exit-137-sigkill "run -d exited $rc: $err"
fi

# 143: a process killed by SIGTERM. PID 1 of a pid namespace ignores signals it
# has no handler for, so the process runs in the host's pid namespace.
capture dk run -d --pid host "$img" sleep 300
if [[ $rc == 0 ]]; then
  ctr=$out
  dk stop -t 10 "$ctr" >/dev/null 2>&1 || true
  code=$(inspect "$ctr" '{{.State.ExitCode}}')
  if [[ $code == 143 ]]; then pass exit-143-sigterm; else fail exit-143-sigterm "exit code '$code', want 143"; fi
  dk rm -f "$ctr" >/dev/null 2>&1 || true
else
  fail exit-143-sigterm "run -d exited $rc: $err"
fi

# --- a detached container: exec, tty, logs, update, pause, stats, top, stop, rm
capture dk run -d --name "main-$tag" "$img" sh -c 'echo started; while true; do sleep 1; done'
ctr=$out
if [[ $rc == 0 ]] && wait_state "$ctr" running; then
  pass run-detached
  pid=$(inspect "$ctr" '{{.State.Pid}}')

  capture dk exec "$ctr" echo inside
  if [[ $rc == 0 && $out == inside ]]; then pass exec; else fail exec "exit $rc, stdout '$out', stderr: $err"; fi

  capture dk exec "$ctr" sh -c 'exit 5'
  if [[ $rc == 5 ]]; then pass exec-exit-status; else fail exec-exit-status "exit $rc, want 5: $err"; fi

  capture dk exec "$ctr" no-such-command
  if [[ $rc == 126 && "$out $err" == *"executable file not found"* ]]; then pass exec-not-found
  else fail exec-not-found "exit $rc (want 126), stdout '$out', stderr: $err"; fi

  # -it through a pseudo-terminal that script(1) provides.
  capture script -qfec "$docker_cli -H unix://$docker_sock exec -it $ctr sh -c 'test -t 0 && test -t 1 && echo tty-ok; tty'" /dev/null
  if [[ $rc == 0 && $out == *tty-ok* && $out == */dev/pts/* ]]; then pass exec-it
  else fail exec-it "exit $rc, stdout '$(echo "$out" | tr -d '\r' | tr '\n' ' ')', stderr: $err"; fi

  capture dk logs "$ctr"
  if [[ $rc == 0 && $out == started ]]; then pass logs; else fail logs "exit $rc, stdout '$out', stderr: $err"; fi

  # update: Docker's view, the cgroup files and the runtime's own stats agree.
  capture dk update --memory 64m --memory-swap 128m --cpus 0.5 --pids-limit 50 "$ctr"
  if [[ $rc == 0 ]]; then
    view="$(inspect "$ctr" '{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}')"
    files="$(cgroup_file_of "$pid" memory memory.limit_in_bytes memory.max) $(cgroup_file_of "$pid" memory memory.memsw.limit_in_bytes memory.swap.max) $(cgroup_file_of "$pid" cpu cpu.cfs_quota_us) $(cgroup_file_of "$pid" cpu cpu.cfs_period_us) $(cgroup_file_of "$pid" pids pids.max)"
    stats=$("$runtime" --root "$(runtime_root)" events --stats "$ctr" 2>&1 | tr -d ' \n' || true)
    shares=$(cgroup_file_of "$pid" cpu cpu.shares cpu.weight)
    if [[ $view == "67108864 134217728 500000000 50" ]] &&
       [[ $files == "67108864 134217728 50000 100000 50" || $files == "67108864 67108864 50000 100000 50" ]] &&
       [[ $stats == *'"limit":67108864'* && $stats == *'"limit":50'* ]]; then
      pass update
    else
      fail update "docker: '$view', cgroup: '$files', runtime stats: '${stats:0:300}'"
    fi
    # Docker sends cpu shares 0 (not set) and blkio weight 0: the kernel's defaults stay.
    if [[ $shares == 1024 || $shares == 100 ]]; then pass cpu-shares-default
    else fail cpu-shares-default "cpu.shares/cpu.weight is '$shares', want the kernel's default"; fi
  else
    fail update "exit $rc: $err"
  fi

  capture dk pause "$ctr"
  if [[ $rc == 0 ]] && wait_state "$ctr" paused; then
    frozen=$(cgroup_file_of "$pid" freezer freezer.state cgroup.freeze)
    if [[ $frozen == FROZEN || $frozen == 1 ]]; then pass pause; else fail pause "freezer says '$frozen'"; fi
  else
    fail pause "exit $rc, state '$(inspect "$ctr" '{{.State.Status}}')': $err"
  fi
  capture dk unpause "$ctr"
  if [[ $rc == 0 ]] && wait_state "$ctr" running; then pass unpause
  else fail unpause "exit $rc, state '$(inspect "$ctr" '{{.State.Status}}')': $err"; fi

  capture dk stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' "$ctr"
  if [[ $rc == 0 && $out == *" / 64MiB|"* && $out != "0B "* && ${out##*|} -ge 1 ]]; then pass stats
  else fail stats "exit $rc, stdout '$out' (want usage > 0 of 64MiB, pids >= 1): $err"; fi

  capture dk top "$ctr"
  if [[ $rc == 0 && $out == *"while true"* ]]; then pass top
  else fail top "exit $rc, stdout '$(echo "$out" | tr '\n' ' ')': $err"; fi

  # busybox sh as PID 1 ignores SIGTERM: stop ends with SIGKILL after the timeout.
  capture dk stop -t 1 "$ctr"
  code=$(inspect "$ctr" '{{.State.ExitCode}}')
  if [[ $rc == 0 && $(inspect "$ctr" '{{.State.Status}}') == exited && $code == 137 ]]; then pass stop
  else fail stop "exit $rc, state '$(inspect "$ctr" '{{.State.Status}}')', exit code '$code': $err"; fi

  capture dk rm "$ctr"
  if [[ $rc == 0 ]] && ! dk inspect "$ctr" >/dev/null 2>&1; then pass rm; else fail rm "exit $rc: $err"; fi
else
  fail run-detached "exit $rc, stdout '$ctr', state '$(inspect "$ctr" '{{.State.Status}}')', stderr: $err"
fi

# A kernel refusal (memory in use above the new limit, no swap to push it to):
# the update fails and changes nothing, in Docker's view and in the cgroup.
capture dk run -d --memory 256m --memory-swap 256m --pids-limit 100 "$img" \
  sh -c 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; echo filled; while true; do sleep 1; done'
ctr=$out
if [[ $rc == 0 ]] && wait_state "$ctr" running; then
  for _ in $(seq 1 100); do [[ $(dk logs "$ctr" 2>/dev/null) == filled ]] && break; sleep 0.1; done
  pid=$(inspect "$ctr" '{{.State.Pid}}')
  capture dk update --memory 16m --memory-swap 16m --pids-limit 20 "$ctr"
  files="$(cgroup_file_of "$pid" memory memory.limit_in_bytes memory.max) $(cgroup_file_of "$pid" pids pids.max)"
  view=$(inspect "$ctr" '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}')
  if [[ $rc != 0 && $files == "268435456 100" && $view == "268435456 100" ]]; then pass update-refused-changes-nothing
  else fail update-refused-changes-nothing "update exit $rc ($err); cgroup '$files', docker '$view', want 268435456 100"; fi
  dk rm -f "$ctr" >/dev/null 2>&1 || true
else
  fail update-refused-changes-nothing "run -d exited $rc: $err"
fi

# --- security and users -----------------------------------------------------
capture dk run --rm --read-only "$img" sh -c 'touch /x 2>/dev/null && echo wrote-root; touch /dev/shm/y && echo wrote-shm'
if [[ $rc == 0 && $out == wrote-shm ]]; then pass read-only; else fail read-only "exit $rc, stdout '$out': $err"; fi

capture dk run --rm --cap-drop ALL "$img" sh -c 'grep CapEff /proc/self/status; chown nobody /tmp 2>/dev/null && echo chowned; true'
if [[ $rc == 0 && $out == *"0000000000000000" && $out != *chowned* ]]; then pass cap-drop-all
else fail cap-drop-all "exit $rc, stdout '$out': $err"; fi

capture dk run --rm --cap-drop ALL --cap-add NET_ADMIN --cap-add CHOWN "$img" sh -c 'grep CapEff /proc/self/status'
if [[ $rc == 0 && $out == *"0000000000001001" ]]; then pass cap-add; else fail cap-add "exit $rc, stdout '$out': $err"; fi

capture dk run --rm --user 65534:65534 "$img" id
if [[ $rc == 0 && $out == "uid=65534(nobody) gid=65534(nogroup)"* ]]; then pass user-ids
else fail user-ids "exit $rc, stdout '$out': $err"; fi
capture dk run --rm --user nobody "$img" sh -c 'id -u; touch /root/x 2>/dev/null && echo wrote; true'
if [[ $rc == 0 && $out == 65534 ]]; then pass user-name; else fail user-name "exit $rc, stdout '$out': $err"; fi

# --- networks ---------------------------------------------------------------
capture dk run --rm --network none "$img" sh -c 'ls /sys/class/net | tr "\n" " "; ip -o link show lo'
if [[ $rc == 0 && $out == "lo "* && $out == *"<LOOPBACK,UP"* ]]; then pass network-none
else fail network-none "exit $rc, stdout '$out': $err"; fi

host_ifs=$(ls /sys/class/net | tr '\n' ' ')
capture dk run --rm --network host "$img" sh -c 'ls /sys/class/net | tr "\n" " "'
if [[ $rc == 0 && $out == "$host_ifs" ]]; then pass network-host
else fail network-host "exit $rc, interfaces '$out', host's '$host_ifs': $err"; fi

# A user-defined bridge: without iptables Docker only adds the bridge and veths;
# containers on it reach each other (no forwarding or NAT is involved).
subnet=172.31.$((RANDOM % 200 + 20)).0/24
capture dk network create --driver bridge --subnet "$subnet" "$net"
if [[ $rc == 0 ]]; then
  capture dk run -d --network "$net" "$img" sleep 300
  srv=$out
  ip=$(inspect "$srv" '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}')
  capture dk run --rm --network "$net" "$img" ping -c 1 -W 5 "$ip"
  if [[ $rc == 0 && $out == *"1 packets received"* ]]; then pass network-bridge
  else fail network-bridge "ping $ip exited $rc: $(echo "$out" | tr '\n' ' ') $err"; fi
  dk rm -f "$srv" >/dev/null 2>&1 || true
else
  fail network-bridge "network create exited $rc: $err"
fi

# --- restart policy ---------------------------------------------------------
capture dk run -d --restart on-failure:3 "$img" sh -c 'exit 1'
ctr=$out
if [[ $rc == 0 ]]; then
  for _ in $(seq 1 200); do
    [[ $(inspect "$ctr" '{{.RestartCount}} {{.State.Status}}') == "3 exited" ]] && break
    sleep 0.1
  done
  got=$(inspect "$ctr" '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}')
  if [[ $got == "3 exited 1" ]]; then pass restart-on-failure
  else fail restart-on-failure "restarts/status/exit '$got', want '3 exited 1'"; fi
  dk rm -f "$ctr" >/dev/null 2>&1 || true
else
  fail restart-on-failure "run -d exited $rc: $err"
fi

# --- 20 containers at once --------------------------------------------------
runs=()
for i in $(seq 1 20); do
  (dk run --rm "$img" echo "par-$i" >"$tmp/par-$i.out" 2>"$tmp/par-$i.err"; echo $? >"$tmp/par-$i.rc") &
  runs+=($!)
done
wait "${runs[@]}"  # not the daemons
bad=
for i in $(seq 1 20); do
  [[ $(cat "$tmp/par-$i.rc") == 0 && $(cat "$tmp/par-$i.out") == "par-$i" ]] ||
    bad+=" $i:rc=$(cat "$tmp/par-$i.rc"):$(head -c 200 "$tmp/par-$i.err")"
done
if [[ -z $bad ]]; then pass parallel-20; else fail parallel-20 "failed runs:$bad"; fi

# --- nothing left -----------------------------------------------------------
capture dk ps -aq
left=$(ls -A "$(runtime_root)" 2>/dev/null | { grep -vx '.seccomp-cache' || true; } | tr '\n' ' ')
if [[ $rc == 0 && -z $out && -z ${left// /} ]]; then pass nothing-left
else fail nothing-left "docker ps -a: '$(echo "$out" | tr '\n' ' ')', runtime state: '$left'"; fi

if [[ $failed != 0 ]]; then
  echo "--- runtime invocations ---"
  tail -60 "$argv_log" 2>/dev/null || true
  echo "--- dockerd log (errors) ---"
  grep -i 'level=error' "$tmp/dockerd.log" | tail -20 || true
  echo "---"
fi
summary
