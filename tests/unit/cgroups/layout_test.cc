#include "cgroups/layout.h"

#include <gtest/gtest.h>

#include "cgroups/paths.h"
#include "unit/cgroups/fake_cgroupfs.h"

namespace vessel::cgroups {
namespace {

using namespace testing;

TEST(Layout, DetectsHybridWithSeparateCpuAndCpuacct) {
  auto t = parse_mountinfo(kHybridMountinfo);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->layout, Layout::kHybrid);
  ASSERT_EQ(t->v1.size(), 9u);
  EXPECT_EQ(t->v1[0].mountpoint, "/sys/fs/cgroup/cpu");
  EXPECT_EQ(t->v1[0].controllers, std::vector<std::string>{"cpu"});
  EXPECT_EQ(t->v1[1].controllers, std::vector<std::string>{"cpuacct"});
  EXPECT_EQ(t->v1[8].controllers, std::vector<std::string>{"name=systemd"});
  ASSERT_TRUE(t->v2);
  EXPECT_EQ(t->v2->mountpoint, "/sys/fs/cgroup/unified");
}

TEST(Layout, DetectsV1AndIgnoresMountFlags) {
  auto t = parse_mountinfo(kV1Mountinfo);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->layout, Layout::kV1);
  EXPECT_FALSE(t->v2);
  ASSERT_EQ(t->v1.size(), 5u);
  EXPECT_EQ(t->v1[0].controllers, std::vector<std::string>{"name=systemd"});  // xattr, release_agent dropped
  EXPECT_EQ(t->v1[1].controllers, (std::vector<std::string>{"cpu", "cpuacct"}));
  EXPECT_EQ(t->v1[1].mountpoint, "/sys/fs/cgroup/cpu,cpuacct");
}

TEST(Layout, DetectsV2) {
  EXPECT_EQ(*detect_layout(kV2Mountinfo), Layout::kV2);
}

TEST(Layout, NoCgroupMountIsAnError) {
  EXPECT_FALSE(detect_layout("22 26 0:21 / /proc rw - proc proc rw\n"));
  EXPECT_FALSE(detect_layout(""));
}

TEST(Layout, SkipsBindMountsOfTheSameHierarchyAndUnescapesPaths) {
  auto t = parse_mountinfo(
      "1 0 0:1 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "2 0 0:1 /x /mnt/my\\040mem rw shared:3 master:2 - cgroup cgroup rw,memory\n"
      "3 0 0:2 /sub /mnt/c\\040g rw - cgroup2 cgroup2 rw\n");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->v1.size(), 1u);
  EXPECT_EQ(t->v2->mountpoint, "/mnt/c g");
  EXPECT_EQ(t->v2->root, "/sub");
}

TEST(Layout, TheRealHostParses) {
  auto l = detect_layout();
  EXPECT_TRUE(l) << l.error().message();
}

TEST(ProcCgroup, ParsesV1AndV2Lines) {
  auto p = parse_proc_cgroup("4:memory:/process_api/abc\n2:cpu,cpuacct:/a:b\n0::/user.slice\n");
  ASSERT_TRUE(p);
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[0].controllers, std::vector<std::string>{"memory"});
  EXPECT_EQ((*p)[1].path, "/a:b");
  EXPECT_TRUE((*p)[2].controllers.empty());
  EXPECT_EQ((*p)[2].path, "/user.slice");
  EXPECT_FALSE(parse_proc_cgroup("garbage\n"));
}

TEST(Paths, AbsoluteRelativeAndDefault) {
  EXPECT_EQ(*resolve_path("/machine/c1", "c1", "/own"), "/machine/c1");
  EXPECT_EQ(*resolve_path("//machine//./c1/", "c1", "/own"), "/machine/c1");
  EXPECT_EQ(*resolve_path("pod/c1", "c1", "/process_api/abc"), "/process_api/abc/pod/c1");
  EXPECT_EQ(*resolve_path("c1", "c1", "/"), "/c1");
  EXPECT_EQ(*resolve_path("", "c1", "/own"), "/vessel/c1");
  EXPECT_FALSE(resolve_path("/a/../../etc", "c1", "/"));
  EXPECT_FALSE(resolve_path("", "../x", "/"));
  EXPECT_FALSE(resolve_path("", "", "/"));
}

TEST(Paths, OwnPathIsRelativeToTheMountRoot) {
  EXPECT_EQ(own_path_in_mount("/docker/x/y", "/docker/x"), "/y");
  EXPECT_EQ(own_path_in_mount("/docker/x", "/docker/x"), "/");
  EXPECT_EQ(own_path_in_mount("/docker/xy", "/docker/x"), "/docker/xy");
  EXPECT_EQ(own_path_in_mount("/a", "/"), "/a");

  auto t = parse_mountinfo(kHybridMountinfo);
  auto self = parse_proc_cgroup(kHybridProcCgroup);
  ASSERT_TRUE(t && self);
  EXPECT_EQ(own_path_for(t->v1[3], *self), "/process_api/abc");  // memory
  EXPECT_EQ(own_path_for(t->v1[0], *self), "/");
  EXPECT_EQ(own_path_for(*t->v2, *self), "/");
}

}  // namespace
}  // namespace vessel::cgroups
