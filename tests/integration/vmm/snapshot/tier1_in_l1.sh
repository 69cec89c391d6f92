#!/bin/sh
# Payload of ctest vmharness.vmm_snapshot: the tier-1 snapshot tests (tiny
# guests: snapshot, restore, diff + merge, bad files, clones, restore
# times) run on the L1's nested KVM, for hosts without a usable /dev/kvm of
# their own. The test binary comes in with --bin.
set -u
[ -c /dev/kvm ] || { echo "FAIL: no /dev/kvm in L1"; exit 1; }
cd /tmp
exec /usr/local/bin/vessel_integration_tests --gtest_color=no --gtest_filter='VmmSnapshot.*'
