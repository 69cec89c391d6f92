#!/bin/sh
# Payload of ctest vmharness.vmm_tier1: the tier-1 VMM tests (tiny guests:
# the machine with pause/resume, virtio, the CLI, the detached VMM and its
# API, snapshots: restore, diff + merge, bad files, clones, restore times)
# on the L1's nested KVM, for hosts without a usable /dev/kvm of their own.
# The test binary comes in with --bin; the CLI and API tests run the L1's
# copy of vessel (VESSEL_TEST_BINARY).
set -u
[ -c /dev/kvm ] || { echo "FAIL: no /dev/kvm in L1"; exit 1; }
cd /tmp
export VESSEL_TEST_BINARY=/usr/local/bin/vessel
exec /usr/local/bin/vessel_integration_tests --gtest_color=no \
  --gtest_filter='VmmMachine.*:VmmVirtio.*:VmmCli.*:VmmCliVirtio.*:VmApi.*:VmmSnapshot.*'
