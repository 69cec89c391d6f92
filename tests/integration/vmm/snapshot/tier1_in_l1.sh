#!/bin/sh
# Payload of ctest vmharness.vmm_tier1: the tier-1 VMM tests (tiny guests: the
# machine (exits, resets, pause), virtio notification,
# the CLI, the detached VMM and its API with pause/resume, snapshots:
# restore, diff + merge, bad files, clones, restore times; live migration
# between two machines of one process, memfd hand-over, faults; between two
# VMM processes through the CLI)
# on the L1's nested KVM, for hosts without a usable /dev/kvm of their own.
# The test binary comes in with --bin; the CLI and API tests run the L1's
# copy of vessel (VESSEL_TEST_BINARY).
set -u
[ -c /dev/kvm ] || { echo "FAIL: no /dev/kvm in L1"; exit 1; }
cd /tmp
export VESSEL_TEST_BINARY=/usr/local/bin/vessel
# RestoreTimesBySize only prints
# timings (minutes under TCG): run it by hand. VmmMigrationCli (a 512 MiB
# guest between two VMM processes over TCP, with the dirty ring and with
# bitmaps, post-copy, the source dying in post-copy, vm upgrade) takes about
# a minute here.
# ClonesShareTheSnapshotMemory runs 100 clones at once (80 s idle here, up to 8 min
# on a loaded machine). Here, under nested SVM emulated by QEMU TCG, a running L2
# guest now and then ends in a shutdown no guest instruction caused (2 of 300
# fresh guests of the same loop, run 100 at a time, died so without taking any
# exception; 2 runs of this test in ~25 lost one clone so, and a run on an idle
# host lost two: about 0.7 a run, so allowing one failed ~16% of runs, allowing
# three ~0.6%): up to three such clones are allowed and printed (NOTE: spurious
# shutdown); the other 97 must count and keep their pattern. An exception in a
# clone, a fourth loss, or any other stop still fails.
export VESSEL_TEST_SPURIOUS_SHUTDOWNS=3
exec /usr/local/bin/vessel_integration_tests --gtest_color=no \
  --gtest_filter='VmmCli.*:VmmCliVirtio.*:VmApi.*:VmmSnapshot.*:VmmMigration.*:VmmMigrationCli.*:VmmMachine.*:VmmVirtio.*-VmmSnapshot.RestoreTimesBySize'
