#!/bin/bash
# Configures and builds vessel.
#   build.sh            everything (vessel, tests, benchmarks) into ./build, optimised with
#                       debug info (RelWithDebInfo): what scripts/test.sh runs; without
#                       ccache a unity build with the precompiled header (below)
#   build.sh release    only the vessel binary into ./build-release: -O2, no debug info,
#                       stripped (~3 MB), no tests, as a unity build (CMAKE_UNITY_BUILD: each
#                       library's .cc files compiled 16 to a translation unit, so the heavy
#                       headers, nlohmann/json and CLI11, are parsed a few times instead of
#                       once per file: about a third of the CPU time), with a precompiled
#                       header of json and the STL whose json_instances.h compiles json's
#                       parser and serializer once (VESSEL_PCH; not with ccache): what scripts/quickstart.sh
#                       runs; `cmake --install build-release` installs it
# A new build directory uses Ninja when it is installed; an existing one keeps its generator.
set -euo pipefail
cd "$(dirname "$0")/.."
configure() {  # configure DIR ARGS...
  local dir=$1
  shift
  local generator=()
  [[ ! -f $dir/CMakeCache.txt ]] && command -v ninja >/dev/null && generator=(-G Ninja)
  cmake -S . -B "$dir" "${generator[@]}" "$@" >/dev/null
}
if [[ ${1:-} == release ]]; then
  # The precompiled header saves CPU only without a compiler cache: ccache (set as
  # CMAKE_CXX_COMPILER_LAUNCHER) does not cache compilations that use one.
  pch=ON
  [[ -n ${CMAKE_CXX_COMPILER_LAUNCHER:-} ]] && pch=OFF
  configure build-release -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DCMAKE_EXE_LINKER_FLAGS="-s" -DVESSEL_BUILD_TESTS=OFF -DVESSEL_BUILD_BENCH=OFF \
    -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 -DVESSEL_PCH=$pch
  if ! cmake --build build-release -j"$(nproc)" --target vessel; then
    # In a unity build two .cc files of one library share a translation unit, so two
    # file-local (anonymous namespace, static) names that are the same clash: rename one.
    echo "vessel: the unity build failed (see above: a file-local name defined in two .cc files" \
      "of one library?); building file by file instead" >&2
    configure build-release -DCMAKE_UNITY_BUILD=OFF
    cmake --build build-release -j"$(nproc)" --target vessel
  fi
else
  # Without a compiler cache (a fresh clone, CI) the test build is a unity build with the
  # precompiled header too: most of its CPU time went to parsing the same headers in each
  # of ~270 units. With ccache (development) each file stays its own unit, cached.
  fast=()
  [[ -z ${CMAKE_CXX_COMPILER_LAUNCHER:-} ]] &&
    fast=(-DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 -DVESSEL_PCH=ON)
  configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${fast[@]}"
  cmake --build build -j"$(nproc)"
fi
