#!/bin/bash
# Container start through the engines: `docker run --rm IMG true` and
# `ctr run --rm IMG ID true` with vessel vs runc (and crun where it starts),
# interleaved; reports times and ratios.
#   bench/engine_start.sh [VESSEL_BINARY] [RUNS]   (default build/vessel, 30)
# Needs root, docker.io, containerd, busybox-static. Not run in CI. Details in engine_start.py.
#
# A containerd and a dockerd of the benchmark's own (temp dir roots, sockets,
# cgroupfs driver, no iptables, no default bridge: --network none runs) are
# started here with the runtimes registered in daemon.json, and stopped, with
# everything they made, on exit. As in container_start.sh, it all runs in a
# private mount namespace where an empty file hides this hybrid host's v2
# controllers from crun (which refuses the host otherwise); the daemons, shims
# and runtimes all see the same view.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$(readlink -f "${1:-$here/../build/vessel}")
runs=${2:-30}
controllers=/sys/fs/cgroup/unified/cgroup.controllers

if [[ -z ${VESSEL_BENCH_IN_NS:-} && -e $controllers ]]; then
  exec env VESSEL_BENCH_IN_NS=1 unshare --mount --propagation private "$0" "$vessel" "$runs"
fi

tmp=$(mktemp -d /tmp/vessel-bench-engine.XXXXXX)
chmod 0711 "$tmp"
busybox=/bin/busybox
# shellcheck source=../tests/integration/containerd/engine_lib.sh
source "$here/../tests/integration/containerd/engine_lib.sh"
docker_sock=$tmp/docker.sock
cgroup_parent=vessel-bench-engine-${tmp##*.}
dockerd_pid=

cleanup() {
  set +e
  if [[ -S $docker_sock ]]; then
    ids=$(/usr/bin/docker -H "unix://$docker_sock" ps -aq 2>/dev/null)
    [[ -n $ids ]] && /usr/bin/docker -H "unix://$docker_sock" rm -f $ids >/dev/null 2>&1
  fi
  [[ -n $dockerd_pid ]] && stop_pid "$dockerd_pid" 20
  [[ -n ${ctrd_sock:-} ]] && kill_shims "$ctrd_sock"
  [[ -n ${ctrd_pid:-} ]] && stop_pid "$ctrd_pid" 10
  unmount_under "$tmp"
  remove_cgroups "$cgroup_parent"
  remove_cgroups "vessel-bench"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${VESSEL_BENCH_IN_NS:-} ]]; then
  touch "$tmp/empty"
  mount --bind "$tmp/empty" "$controllers"
fi

runtimes=("vessel=$vessel")
for peer in runc crun; do
  p=$(command -v "$peer" || true)
  [[ -n $p ]] && runtimes+=("$peer=$p")
done
entries=
for r in "${runtimes[@]}"; do entries+="${entries:+, }\"bench-${r%%=*}\": {\"path\": \"${r#*=}\"}"; done

start_containerd "$tmp/ctrd"
cat >"$tmp/daemon.json" <<JSON
{
  "runtimes": {$entries},
  "iptables": false, "ip-forward": false, "ip-masq": false, "bridge": "none",
  "exec-opts": ["native.cgroupdriver=cgroupfs"],
  "cgroup-parent": "/$cgroup_parent",
  "storage-driver": "overlay2",
  "default-ulimits": {"nofile": {"Name": "nofile", "Soft": 20000, "Hard": 20000}}
}
JSON
dockerd --config-file "$tmp/daemon.json" --data-root "$tmp/data" --exec-root "$tmp/x" \
  -H "unix://$docker_sock" --pidfile "$tmp/dockerd.pid" --containerd "$ctrd_sock" >"$tmp/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 1 150); do
  /usr/bin/docker -H "unix://$docker_sock" version >/dev/null 2>&1 && break
  sleep 0.2
done

build_rootfs "$tmp/rootfs"
tar --numeric-owner -C "$tmp/rootfs" -cf "$tmp/busybox.tar" .
/usr/bin/docker -H "unix://$docker_sock" import "$tmp/busybox.tar" vessel-bench:latest >/dev/null
oci_archive "$tmp/rootfs" "$tmp/image.tar" docker.io/library/vessel-bench:latest
ctr --address "$ctrd_sock" --namespace vessel-bench image import "$tmp/image.tar" >/dev/null

python3 "$here/engine_start.py" --docker-sock "$docker_sock" --ctrd-sock "$ctrd_sock" \
  --runc-root "$tmp/runc-root" --runs "$runs" "${runtimes[@]}"
