#!/bin/bash
# Quick start, command 2: installs what is needed, builds, and runs every test
# (unit tests, root container tests, tier-1 KVM tests, the VM harness, podman).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "vessel: run the tests as root (containers and KVM need it)" >&2; exit 1; }
./scripts/deps.sh
./scripts/build.sh
cd build
ctest --output-on-failure --timeout 900 "$@"
