#!/bin/bash
# Container start time and CPU: `run` of a busybox bundle executing /bin/true,
# vessel vs crun vs runc (Debian packages), interleaved.
#   bench/container_start.sh [VESSEL_BINARY] [RUNS]   (default build/vessel, 50)
# Needs root. Details in container_start.py.
#
# crun refuses this host's cgroup v1/v2 hybrid (a v2 hierarchy holding only
# hugetlb at /sys/fs/cgroup/unified) unless it sees no v2 controllers. So the
# benchmark runs in a private mount namespace where an empty file is bound over
# /sys/fs/cgroup/unified/cgroup.controllers, for all three runtimes alike; the
# namespace and its mounts vanish with the script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$(readlink -f "${1:-$here/../build/vessel}")
runs=${2:-50}
controllers=/sys/fs/cgroup/unified/cgroup.controllers

if [[ -z ${VESSEL_BENCH_IN_NS:-} && -e $controllers ]]; then
  exec env VESSEL_BENCH_IN_NS=1 unshare --mount --propagation private "$0" "$vessel" "$runs"
fi
if [[ -n ${VESSEL_BENCH_IN_NS:-} ]]; then
  empty=$(mktemp /tmp/vessel-bench-empty.XXXXXX)
  trap 'rm -f "$empty"' EXIT
  mount --bind "$empty" "$controllers"
fi
python3 "$here/container_start.py" "$vessel" "$runs"
