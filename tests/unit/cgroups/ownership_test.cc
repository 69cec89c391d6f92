// Which cgroups a container owns: the default name per state root, plan() before
// make(), refusal of cgroups that are someone else's, destroy() of only what was made.
#include <gtest/gtest.h>

#include "cgroups/manager.h"
#include "cgroups/paths.h"
#include "unit/cgroups/fake_cgroupfs.h"

namespace vessel::cgroups {
namespace {

using namespace testing;

TEST(DefaultCgroupName, DiffersPerRootAndStaysReadable) {
  std::string a = default_cgroup_name("c1", "/run/vessel");
  std::string b = default_cgroup_name("c1", "/tmp/other-root");
  EXPECT_NE(a, b);
  EXPECT_EQ(a, default_cgroup_name("c1", "/run/vessel")) << "stable: delete must find what create made";
  EXPECT_EQ(a.rfind("c1-", 0), 0u) << a;
  EXPECT_EQ(a.size(), 3u + 8u);
  EXPECT_EQ(default_cgroup_name("c1", ""), "c1");
  EXPECT_EQ(*resolve_path("", a, "/own"), "/vessel/" + a);
}

TEST(DefaultCgroupName, LongIdsFitOnePathComponent) {
  std::string id1(300, 'x'), id2 = std::string(299, 'x') + "y";
  std::string n1 = default_cgroup_name(id1, "/r"), n2 = default_cgroup_name(id2, "/r");
  EXPECT_LE(n1.size(), 255u);
  EXPECT_NE(n1, n2) << "the hash covers the part of the ID that was cut";
  EXPECT_LE(default_cgroup_name(std::string(250, 'a'), "/r").size(), 255u);
}

class OwnershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* h : {"memory", "pids", "freezer"}) fs_.dir(h);
  }
  Options options(const std::string& cgroups_path) {
    Options o;
    o.container_id = "c1";
    o.state_root = "/run/owner-test";
    o.cgroups_path = cgroups_path;
    o.root = fs_.root();
    o.mountinfo =
        "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "36 31 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
        "37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer\n";
    o.proc_cgroup = "4:memory:/\n3:pids:/\n2:freezer:/\n";
    return o;
  }
  FakeCgroupFs fs_;
};

TEST_F(OwnershipTest, PlanCreatesNothingAndMakeCreatesWhatItPlanned) {
  auto m = Manager::plan(options(""));
  ASSERT_TRUE(m) << m.error().message();
  std::string leaf = "memory/vessel/" + default_cgroup_name("c1", "/run/owner-test");
  EXPECT_FALSE(fs_.exists(leaf));
  EXPECT_TRUE((*m)->owned());
  std::string planned = (*m)->save();
  ASSERT_TRUE((*m)->make());
  EXPECT_TRUE(fs_.exists(leaf));
  // Killed between make() and the next save: the saved plan is enough to remove it all.
  auto from_plan = Manager::load(planned);
  ASSERT_TRUE(from_plan);
  EXPECT_TRUE((*from_plan)->owned());
  ASSERT_TRUE((*from_plan)->destroy());
  EXPECT_FALSE(fs_.exists("memory/vessel"));
  EXPECT_FALSE(fs_.exists("pids/vessel"));
  EXPECT_TRUE(fs_.exists("memory"));
}

TEST_F(OwnershipTest, ExistingEmptyCgroupIsJoinedButNeverRemoved) {
  fs_.file("memory/host/svc/cgroup.procs");
  fs_.file("pids/host/svc/cgroup.procs");
  fs_.file("freezer/host/svc/cgroup.procs");
  fs_.file("freezer/host/svc/freezer.state", "THAWED\n");
  fs_.dir("memory/host/svc/foreign-child");
  auto m = Manager::create(options("/host/svc"));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_FALSE((*m)->owned());
  auto loaded = Manager::load((*m)->save());
  ASSERT_TRUE(loaded);
  EXPECT_FALSE((*loaded)->owned()) << (*m)->save();
  ASSERT_TRUE((*loaded)->destroy());
  EXPECT_TRUE(fs_.exists("memory/host/svc/foreign-child"));
  EXPECT_TRUE(fs_.exists("pids/host/svc"));
}

TEST_F(OwnershipTest, OwnedInOneHierarchyOnlyIsNotOwned) {
  fs_.file("memory/mixed/cgroup.procs");  // exists in memory only
  auto m = Manager::create(options("/mixed"));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_FALSE((*m)->owned()) << "kill through the cgroup only when every hierarchy's is ours";
  ASSERT_TRUE((*m)->destroy());
  EXPECT_TRUE(fs_.exists("memory/mixed"));
  EXPECT_FALSE(fs_.exists("pids/mixed"));
}

TEST_F(OwnershipTest, RefusesTheRootCgroupAndCgroupsWithProcesses) {
  auto root = Manager::plan(options("/"));
  ASSERT_FALSE(root);
  EXPECT_NE(root.error().message().find("root cgroup"), std::string::npos) << root.error().message();
  EXPECT_NE(root.error().message().find("linux.cgroupsPath"), std::string::npos);

  fs_.file("memory/busy/cgroup.procs");
  fs_.file("memory/busy/child/cgroup.procs", "4242\n");  // a process below counts too
  auto busy = Manager::plan(options("/busy"));
  ASSERT_FALSE(busy);
  EXPECT_NE(busy.error().message().find("not empty: 1 process(es)"), std::string::npos) << busy.error().message();

  fs_.file("freezer/frozen/cgroup.procs");
  fs_.file("freezer/frozen/freezer.state", "FROZEN\n");
  auto frozen = Manager::plan(options("/frozen"));
  ASSERT_FALSE(frozen);
  EXPECT_NE(frozen.error().message().find("frozen"), std::string::npos);

  // A relative path that resolves to the runtime's own cgroup is the root here; ".." is refused.
  EXPECT_FALSE(Manager::plan(options(".")));
  EXPECT_FALSE(Manager::plan(options("/a/../../b")));
  EXPECT_FALSE(fs_.exists("memory/b"));
}

TEST_F(OwnershipTest, FailedMakeRemovesOnlyWhatItMade) {
  fs_.file("memory/pod/cgroup.procs");
  fs_.dir("memory/pod/other");
  // pids/pod/c1 cannot be made: a file stands where the directory would go.
  fs_.file("pids/pod", "not a directory");
  auto m = Manager::create(options("/pod/c1"));
  ASSERT_FALSE(m);
  EXPECT_FALSE(fs_.exists("memory/pod/c1"));
  EXPECT_FALSE(fs_.exists("freezer/pod"));
  EXPECT_TRUE(fs_.exists("memory/pod/other"));
}

}  // namespace
}  // namespace vessel::cgroups
