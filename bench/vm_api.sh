#!/bin/sh
# Cost of the VMM API: vm run -d vs foreground vm run vs QEMU microvm (see vm_api.py).
#   bench/vm_api.sh [VESSEL_BINARY] [RUNS]   (needs /dev/kvm; QEMU optional)
exec python3 "$(dirname "$0")/vm_api.py" "$@"
