// The special registers a snapshot or migration takes from KVM and sets back
// (snapshot::check_sregs): the modes an x86 CPU can be in pass, the damaged
// sets refused, with the broken rule named.
#include <gtest/gtest.h>

#include "vmm/snapshot/machine_state.h"

namespace vessel::vmm::snapshot {
namespace sregs_test {
namespace {

kvm_sregs reset_state() {  // a vCPU after INIT: real mode, caches off
  kvm_sregs r{};
  r.cr0 = 0x60000010;
  return r;
}

kvm_sregs long_mode() {
  kvm_sregs r{};
  r.cr0 = 0x80050033;
  r.cr3 = 0x1000;
  r.cr4 = 0x20;      // PAE
  r.efer = 0x500;    // LME | LMA
  r.cs.l = 1;
  return r;
}

TEST(SnapshotSregs, TheModesACpuCanBeInPass) {
  EXPECT_TRUE(check_sregs(reset_state()));
  kvm_sregs flat32{};  // PVH entry: protected mode, no paging
  flat32.cr0 = 0x11;
  EXPECT_TRUE(check_sregs(flat32));
  kvm_sregs paged32 = flat32;  // 32-bit paging, PAE or not
  paged32.cr0 = 0x80000011;
  EXPECT_TRUE(check_sregs(paged32));
  paged32.cr4 = 0x20;
  EXPECT_TRUE(check_sregs(paged32));
  kvm_sregs compat = long_mode();  // long mode, 32-bit code
  compat.cs.l = 0;
  EXPECT_TRUE(check_sregs(compat));
  EXPECT_TRUE(check_sregs(long_mode()));
  kvm_sregs lme_only = flat32;  // EFER.LME set before paging is turned on
  lme_only.efer = 0x100;
  EXPECT_TRUE(check_sregs(lme_only));
}

TEST(SnapshotSregs, DamagedSetsAreRefusedNamingTheRule) {
  // What nested SVM under QEMU's TCG once gave for a 32-bit guest: the host's CR0, CR3 and CS.
  kvm_sregs seen{};
  seen.cr0 = 0x80050033;
  seen.cr3 = 0x7fc40000;
  seen.cs.l = 1;
  Status s = check_sregs(seen);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("CS.L"), std::string::npos) << s.error().message();
  EXPECT_NE(s.error().message().find("cr0=0x80050033"), std::string::npos) << s.error().message();

  kvm_sregs no_pae = long_mode();
  no_pae.cr4 = 0;
  EXPECT_NE(check_sregs(no_pae).error().message().find("CR4.PAE"), std::string::npos);
  kvm_sregs no_lma = long_mode();
  no_lma.efer = 0x100;
  EXPECT_NE(check_sregs(no_lma).error().message().find("without EFER.LMA"), std::string::npos);
  kvm_sregs lma_alone{};
  lma_alone.cr0 = 0x11;
  lma_alone.efer = 0x400;
  EXPECT_NE(check_sregs(lma_alone).error().message().find("EFER.LMA without"), std::string::npos);
  kvm_sregs pg_no_pe{};
  pg_no_pe.cr0 = 0x80000000;
  EXPECT_NE(check_sregs(pg_no_pe).error().message().find("CR0.PG without CR0.PE"), std::string::npos);
  kvm_sregs nw{};
  nw.cr0 = 0x20000011;
  EXPECT_NE(check_sregs(nw).error().message().find("CR0.NW"), std::string::npos);
}

}  // namespace
}  // namespace sregs_test
}  // namespace vessel::vmm::snapshot
