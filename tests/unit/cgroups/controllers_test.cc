// Conversions and pure helpers of the controllers.
#include "cgroups/controllers.h"

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

TEST(Devices, V2AcceptsOnlyDefaultRules) {
  oci::LinuxDeviceCgroup deny_all;
  deny_all.allow = false;
  deny_all.access = "rwm";
  auto rules = default_device_rules();
  rules.insert(rules.begin(), deny_all);
  EXPECT_TRUE(check_devices_v2(rules));
  EXPECT_TRUE(check_devices_v2({}));
  EXPECT_TRUE(check_devices_v2({deny_all}));

  oci::LinuxDeviceCgroup fuse;
  fuse.allow = true;
  fuse.type = "c";
  fuse.major = 10;
  fuse.minor = 229;
  fuse.access = "rwm";
  rules.push_back(fuse);
  auto st = check_devices_v2(rules);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("not supported on cgroup v2 yet"), std::string::npos);
  EXPECT_NE(st.error().message().find("c 10:229 rwm"), std::string::npos);

  oci::LinuxDeviceCgroup allow_all;
  allow_all.allow = true;
  EXPECT_TRUE(check_devices_v2({deny_all, allow_all}));
}

}  // namespace
}  // namespace vessel::cgroups
