#!/bin/bash
# Quick start, command 2: installs what is needed, builds, and runs every test
# (unit tests, root container tests, tier-1 KVM tests, the VM harness, podman).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "vessel: run the tests as root (containers and KVM need it)" >&2; exit 1; }
./scripts/deps.sh
./scripts/build.sh
# The parsers' libFuzzer targets (tests/fuzz/*_fuzz.cc) need clang. Without ccache, a unity
# build with the precompiled header, as build.sh does.
fast=()
[[ -z ${CMAKE_CXX_COMPILER_LAUNCHER:-} ]] &&
  fast=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 -DVESSEL_PCH=ON)
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVESSEL_FUZZ=ON -DVESSEL_BUILD_TESTS=OFF \
  -DVESSEL_BUILD_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo "${fast[@]}" >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target $(basename -s .cc tests/fuzz/*_fuzz.cc)
cmake -S . -B build -DVESSEL_VMHARNESS_REQUIRED=ON >/dev/null
status=0
# ctest keeps the list of failed tests of an earlier run when all pass: start without one.
rm -f build-fuzz/Testing/Temporary/LastTestsFailed.log build/Testing/Temporary/LastTestsFailed.log
# Each fuzz target runs 30 s on one core: two at a time.
(cd build-fuzz && ctest --output-on-failure -L fuzz -j"$(nproc)") || status=$?
(cd build && ctest --output-on-failure --timeout 900 "$@") || status=$?
# Last, where a cut log keeps it: why each failed test failed.
if ((status != 0)); then
  ./scripts/failure_digest.sh build-fuzz
  ./scripts/failure_digest.sh build
fi
exit $status
