#!/bin/sh
# /sys/fs/cgroup is a cgroup2 mount and no cgroup v1 hierarchy is mounted.
fstype=$(awk '$2 == "/sys/fs/cgroup" {t = $3} END {print t}' /proc/mounts)
[ "$fstype" = cgroup2 ] || { echo "/sys/fs/cgroup is '${fstype:-not mounted}', not cgroup2"; exit 1; }
[ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "/sys/fs/cgroup has no cgroup.controllers"; exit 1; }
if grep -q ' cgroup ' /proc/mounts; then echo "a cgroup v1 hierarchy is mounted:"; grep ' cgroup ' /proc/mounts; exit 1; fi
echo "/sys/fs/cgroup: cgroup2, no v1 hierarchies"
