// Conversions and pure helpers of the controllers.
#include "cgroups/controllers.h"
#include "cgroups/device_filter.h"
#include "unit/cgroups/fake_cgroupfs.h"

#include <gtest/gtest.h>

namespace vessel::cgroups {
namespace {

TEST(Conversions, SharesToWeight) {
  EXPECT_EQ(shares_to_weight(0), 0u);
  EXPECT_EQ(shares_to_weight(2), 1u);
  EXPECT_EQ(shares_to_weight(1024), 39u);
  EXPECT_EQ(shares_to_weight(262144), 10000u);
  EXPECT_EQ(shares_to_weight(1u << 30), 10000u);
}

TEST(Conversions, BlkioWeightToIoWeight) {
  EXPECT_EQ(blkio_weight_to_io_weight(10), 1u);
  EXPECT_EQ(blkio_weight_to_io_weight(500), 4950u);
  EXPECT_EQ(blkio_weight_to_io_weight(1000), 10000u);
}

TEST(Conversions, SwapIsMemoryPlusSwapOnV1AndSwapAloneOnV2) {
  EXPECT_EQ(*swap_to_v2(-1, 100), "max");
  EXPECT_EQ(*swap_to_v2(300, 100), "200");
  EXPECT_EQ(*swap_to_v2(100, 100), "0");
  EXPECT_FALSE(swap_to_v2(50, 100));
  EXPECT_FALSE(swap_to_v2(50, -1));
}

TEST(Devices, RuleLines) {
  oci::LinuxDeviceCgroup r;
  r.allow = true;
  r.type = "c";
  r.major = 1;
  r.minor = 3;
  EXPECT_EQ(device_rule_line(r), "c 1:3 rwm");
  r.minor.reset();
  r.access = "r";
  EXPECT_EQ(device_rule_line(r), "c 1:* r");
  r.type.reset();
  EXPECT_EQ(device_rule_line(r), "a *:* r");
}

TEST(Devices, V2InstallsAProgram) {
  testing::FakeDeviceInstaller installer;
  oci::LinuxDeviceCgroup deny_all;
  deny_all.allow = false;
  deny_all.access = "rwm";
  auto rules = default_device_rules();
  rules.insert(rules.begin(), deny_all);
  ASSERT_TRUE(apply_devices_v2(CgroupDir("/sys/fs/cgroup/c1"), rules, installer));
  ASSERT_EQ(installer.installed.size(), 1u);
  EXPECT_EQ(installer.installed[0].first, "/sys/fs/cgroup/c1");
  EXPECT_EQ(installer.installed[0].second.size(), device_filter_program(rules)->size());
  // No rules: nothing to install (the cgroup keeps what it has).
  ASSERT_TRUE(apply_devices_v2(CgroupDir("/sys/fs/cgroup/c1"), {}, installer));
  EXPECT_EQ(installer.installed.size(), 1u);
  // A bad rule installs nothing; the installer's errors pass through.
  oci::LinuxDeviceCgroup bad;
  bad.type = "x";
  EXPECT_FALSE(apply_devices_v2(CgroupDir("/sys/fs/cgroup/c1"), {bad}, installer));
  installer.fail = true;
  auto st = apply_devices_v2(CgroupDir("/sys/fs/cgroup/c1"), rules, installer);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "load eBPF device program: Operation not permitted");
  EXPECT_EQ(installer.installed.size(), 1u);
}

}  // namespace
}  // namespace vessel::cgroups
