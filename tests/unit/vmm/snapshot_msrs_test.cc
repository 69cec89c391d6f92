// Which MSRs a snapshot or migration saves (snapshot::msr_restorable): only
// those KVM takes back on the destination vCPU.
#include <gtest/gtest.h>

#include "vmm/snapshot/machine_state.h"

namespace vessel::vmm::snapshot {
namespace {

constexpr uint32_t kAllKvmFeatures = 0x3ffff;

TEST(SnapshotMsrs, ArchitecturalMsrsAreKept) {
  for (uint32_t m : {0x10u, 0x174u, 0xc0000080u, 0xc0000081u, 0xc0000102u, 0x1a0u})
    EXPECT_TRUE(msr_restorable(m, 0, false)) << std::hex << m;
}

TEST(SnapshotMsrs, AsyncPfInterruptNeedsAnInKernelLapic) {
  // KVM reads MSR_KVM_ASYNC_PF_INT without an in-kernel LAPIC but refuses to write it back.
  EXPECT_FALSE(msr_restorable(0x4b564d06, kAllKvmFeatures, false));
  EXPECT_TRUE(msr_restorable(0x4b564d06, kAllKvmFeatures, true));
  EXPECT_FALSE(msr_restorable(0x4b564d04, kAllKvmFeatures, false));  // PV EOI
  EXPECT_FALSE(msr_restorable(0x6e0, kAllKvmFeatures, false));       // TSC deadline
  EXPECT_TRUE(msr_restorable(0x6e0, 0, true));
}

TEST(SnapshotMsrs, KvmParavirtualMsrsFollowTheGuestCpuid) {
  EXPECT_TRUE(msr_restorable(0x4b564d01, 1u << 3, true));    // kvmclock with CLOCKSOURCE2
  EXPECT_FALSE(msr_restorable(0x4b564d01, 1u << 0, true));
  EXPECT_TRUE(msr_restorable(0x4b564d05, 1u << 12, false));  // poll control
  EXPECT_FALSE(msr_restorable(0x4b564d05, 0, false));
  EXPECT_FALSE(msr_restorable(0x4b564d42, kAllKvmFeatures, true));  // one this list does not know
}

TEST(SnapshotMsrs, HyperVMsrsAreLeftOut) {
  EXPECT_FALSE(msr_restorable(0x40000000, kAllKvmFeatures, true));
  EXPECT_FALSE(msr_restorable(0x400000a0, kAllKvmFeatures, true));
}

}  // namespace
}  // namespace vessel::vmm::snapshot
