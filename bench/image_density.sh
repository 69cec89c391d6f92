#!/bin/bash
# Density of containers from one image: COUNT containers of a busybox image
# started concurrently (`vessel run --image IMG -d --name N -- sleep 1000` through
# xargs -P PARALLEL), then what each one costs:
#   - all running (vessel list) and the time to start them all
#   - disk: du of each container's upper+work dirs, the store before/after, and the
#     image's layers dir unchanged (layers are shared, never copied)
#   - memory: MemAvailable, Committed_AS, Slab, KernelStack, PageTables from
#     /proc/meminfo before vs after, divided by COUNT; the sum of the sleep
#     processes' Pss (smaps_rollup); the containers' memory cgroups (usage_in_bytes)
# then deletes them all (timed) and checks that nothing is left: mounts, cgroups,
# state dirs, bundles, processes.
#   bench/image_density.sh [VESSEL_BINARY]
#   env: DENSITY_COUNT (1000), DENSITY_PARALLEL (32), DENSITY_DIR (parent of the temp dir, /var/tmp)
# Needs root. Not run in CI. /proc/meminfo deltas include whatever else the host
# does meanwhile: read them on a quiet machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$(readlink -f "${1:-$here/../build/vessel}")
count=${DENSITY_COUNT:-1000}
parallel=${DENSITY_PARALLEL:-32}
[[ -x $vessel ]] || { echo "$vessel: not executable" >&2; exit 1; }
[[ $(id -u) == 0 ]] || { echo "needs root" >&2; exit 1; }

dir=$(mktemp -d "${DENSITY_DIR:-/var/tmp}/vessel-density.XXXXXX")
state=$dir/state images=$dir/images prefix="dens$$-"
v() { "$vessel" --root "$state" --image-root "$images" "$@"; }
export vessel state images prefix

# Every container of the private state root is ours: delete them all, whatever their names.
cleanup() {
  if [[ -d $state ]]; then
    "$vessel" --root "$state" list -q 2>/dev/null | xargs -r -P "$parallel" -I{} "$vessel" --root "$state" --image-root "$images" delete --force {} >/dev/null 2>&1 || true
  fi
  grep -o " $images/[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

now() { date +%s.%N; }
meminfo() { awk '{v[$1]=$2} END {print v["MemAvailable:"], v["Committed_AS:"], v["Slab:"], v["SUnreclaim:"], v["KernelStack:"], v["PageTables:"]}' /proc/meminfo; }
bytes() { du -s -x -B1 "$1" | cut -f1; }

# The image: a busybox rootfs tar.
rootfs=$dir/rootfs
mkdir -p "$rootfs"/{bin,dev,proc,sys,tmp,etc}
cp /bin/busybox "$rootfs/bin/"
for a in sh sleep true; do ln -s busybox "$rootfs/bin/$a"; done
echo 'root:x:0:0:root:/:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$dir/bb.tar" .
v image import "$dir/bb.tar" --name density-bb >/dev/null

echo "host: $(nproc) cores, $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "containers: $count from one busybox image, started by xargs -P $parallel, each \`sleep 1000\`"
sync
sleep 2
store_before=$(bytes "$images") layers_before=$(bytes "$images/layers")
read -r avail0 commit0 slab0 sunrec0 kstack0 ptab0 < <(meminfo)

t0=$(now)
set +e
seq 1 "$count" | xargs -P "$parallel" -I{} sh -c \
  '"$vessel" --root "$state" --image-root "$images" run --image density-bb -d --name "${prefix}{}" -- sleep 1000 >/dev/null 2>>"'"$dir"'/start-errors"'
start_rc=$?
set -e
t1=$(now)
sleep 5  # let deferred kernel work (RCU frees, workqueues) settle before sampling
read -r avail1 commit1 slab1 sunrec1 kstack1 ptab1 < <(meminfo)

v list -f json >"$dir/list.json"
read -r running pids < <(python3 - "$dir/list.json" "$prefix" <<'EOF'
import json, sys
cs = [c for c in json.load(open(sys.argv[1])) if c["id"].startswith(sys.argv[2])]
run = [c for c in cs if c.get("status") == "running"]
print(len(run), ",".join(str(c["pid"]) for c in run))
EOF
)
echo
printf 'start:   %d/%d running after %.2f s (%.1f containers/s)%s\n' "$running" "$count" "$(echo "$t1 - $t0" | bc)" \
  "$(echo "$count / ($t1 - $t0)" | bc -l)" "$([[ $start_rc != 0 ]] && echo "; xargs exit $start_rc, first errors: $(head -3 "$dir/start-errors" | tr '\n' ' ')")"

# Disk.
upper_work=$(for c in "$images"/containers/"$prefix"*; do du -s -x -B1 "$c/upper" "$c/work" | awk '{s+=$1} END {print s}'; done |
  awk '{s+=$1; if ($1>m) m=$1} END {printf "%d %d", s, m}')
read -r uw_sum uw_max <<<"$upper_work"
sync
store_after=$(bytes "$images") layers_after=$(bytes "$images/layers")
printf 'disk:    upper+work per container: mean %.1f KiB, max %.1f KiB (du of allocated blocks)\n' \
  "$(echo "$uw_sum / $count / 1024" | bc -l)" "$(echo "$uw_max / 1024" | bc -l)"
printf '         store %.1f MiB -> %.1f MiB (+%.1f KiB per container, bundles with config.json)\n' \
  "$(echo "$store_before / 1048576" | bc -l)" "$(echo "$store_after / 1048576" | bc -l)" \
  "$(echo "($store_after - $store_before) / $count / 1024" | bc -l)"
printf '         layers dir %d bytes before, %d after (%s)\n' "$layers_before" "$layers_after" \
  "$([[ $layers_before == "$layers_after" ]] && echo "unchanged: shared, not copied" || echo CHANGED)"

# Memory.
pss=0
for p in ${pids//,/ }; do
  k=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
  pss=$((pss + ${k:-0}))
done
cg=0
for c in /sys/fs/cgroup/memory/vessel/"$prefix"*; do
  [[ -r $c/memory.usage_in_bytes ]] && cg=$((cg + $(cat "$c/memory.usage_in_bytes")))
done
per() { echo "($1) / $count" | bc -l; }
printf 'memory per container (KiB): MemAvailable %+.0f, Committed_AS %+.0f, Slab %+.0f (unreclaimable %+.0f), KernelStack %+.0f, PageTables %+.0f\n' \
  "$(per "$avail1 - $avail0")" "$(per "$commit1 - $commit0")" "$(per "$slab1 - $slab0")" "$(per "$sunrec1 - $sunrec0")" \
  "$(per "$kstack1 - $kstack0")" "$(per "$ptab1 - $ptab0")"
printf '         sleep processes: Pss %.0f KiB each (sum %.1f MiB); memory cgroups: %.0f KiB each (usage_in_bytes)\n' \
  "$(echo "$pss / ($running + ($running == 0))" | bc -l)" "$(echo "$pss / 1024" | bc -l)" "$(echo "$cg / ($running + ($running == 0)) / 1024" | bc -l)"

# Delete all, then look for leftovers.
t2=$(now)
set +e
ls "$state" | grep "^$prefix" | xargs -P "$parallel" -I{} "$vessel" --root "$state" --image-root "$images" delete --force {} \
  >/dev/null 2>"$dir/delete-errors"
delete_rc=$?
set -e
t3=$(now)
printf 'delete:  %.2f s%s\n' "$(echo "$t3 - $t2" | bc)" "$([[ $delete_rc != 0 ]] && echo "; errors: $(head -3 "$dir/delete-errors" | tr '\n' ' ')")"
left_mounts=$(grep -c " $images/" /proc/self/mountinfo || true)
left_cgroups=$( (ls -d /sys/fs/cgroup/*/vessel/"$prefix"* 2>/dev/null || true) | wc -l)
left_state=$(ls "$state" | grep -c "^$prefix" || true)
left_bundles=$(ls "$images/containers" | wc -l)
# A killed init is reparented to pid 1, which reaps it when it gets to it: zombies count apart.
left_procs=0 zombies=0
for p in ${pids//,/ }; do
  st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null || true)
  if [[ $st == Z ]]; then zombies=$((zombies + 1)); elif [[ -n $st ]]; then left_procs=$((left_procs + 1)); fi
done
sync
layers_end=$(bytes "$images/layers")
printf 'left:    mounts %d, cgroups %d, state dirs %d, bundles %d, processes %d (zombies awaiting pid 1: %d); layers dir %d bytes; store %.1f MiB\n' \
  "$left_mounts" "$left_cgroups" "$left_state" "$left_bundles" "$left_procs" "$zombies" "$layers_end" "$(echo "$(bytes "$images") / 1048576" | bc -l)"
if ((left_mounts + left_cgroups + left_state + left_bundles + left_procs == 0)) && [[ $running == "$count" ]]; then
  echo "result:  OK"
else
  echo "result:  FAILED"
  exit 1
fi
