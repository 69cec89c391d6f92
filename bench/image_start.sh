#!/bin/bash
# Start cost of `vessel run --image IMG --rm` vs `vessel run --bundle B ID` of the
# same busybox rootfs and config, /bin/true, interleaved; reports both and the difference.
#   bench/image_start.sh [VESSEL_BINARY] [RUNS] [LAYERS]   (default build/vessel, 50, 1)
# Needs root. Not run in CI. Details in image_start.py.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
vessel=$(readlink -f "${1:-$here/../build/vessel}")
exec python3 "$here/image_start.py" "$vessel" "${2:-50}" "${3:-1}"
