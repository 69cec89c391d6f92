#!/bin/sh
# VM start time and VMM memory: vessel vs QEMU microvm on a tiny PVH guest.
#   bench/vm_start.sh [VESSEL_BINARY] [RUNS]
# Needs /dev/kvm and qemu-system-x86_64. Details in vm_start.py.
exec python3 "$(dirname "$0")/vm_start.py" "$@"
