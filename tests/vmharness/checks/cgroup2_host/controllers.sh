#!/bin/sh
# memory, pids, cpu and io are available and delegated from the root cgroup.
available=" $(cat /sys/fs/cgroup/cgroup.controllers) "
delegated=" $(cat /sys/fs/cgroup/cgroup.subtree_control) "
echo "controllers: $available"
echo "subtree_control: $delegated"
for c in memory pids cpu io; do
  case $available in *" $c "*) ;; *) echo "controller $c not available"; exit 1 ;; esac
  case $delegated in *" $c "*) ;; *) echo "controller $c not enabled in cgroup.subtree_control"; exit 1 ;; esac
done
# A child cgroup gets the controllers' files and can be removed again.
mkdir /sys/fs/cgroup/vessel-check || exit 1
for f in memory.max pids.max cpu.max io.max; do
  [ -e /sys/fs/cgroup/vessel-check/$f ] || { echo "child cgroup lacks $f"; rmdir /sys/fs/cgroup/vessel-check; exit 1; }
done
rmdir /sys/fs/cgroup/vessel-check
