// The manager on fake v1 and hybrid trees: directories, file writes, freezer, save/load, destroy.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

#include "cgroups/manager.h"
#include "unit/cgroups/fake_cgroupfs.h"

namespace vessel::cgroups {
namespace {

using namespace testing;

// Position of `entry` in the log (log.size() when absent).
size_t index_of(const WriteLog& log, const std::string& entry) {
  return std::find(log.begin(), log.end(), entry) - log.begin();
}

class HybridTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string c = "vessel/c1/";
    for (const char* h : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
                          "unified"})
      fs_.file(std::string(h) + "/" + c + "cgroup.procs");
    for (const char* f : {"cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us",
                          "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.idle"})
      fs_.file("cpu/" + c + f);
    fs_.file("cpuset/cpuset.cpus", "0-3\n");
    fs_.file("cpuset/cpuset.mems", "0\n");
    fs_.file("cpuset/vessel/cpuset.cpus", "\n");
    fs_.file("cpuset/vessel/cpuset.mems", "\n");
    fs_.file("cpuset/" + c + "cpuset.cpus", "\n");
    fs_.file("cpuset/" + c + "cpuset.mems", "\n");
    fs_.file("memory/" + c + "memory.limit_in_bytes", "9223372036854771712\n");
    fs_.file("memory/" + c + "memory.usage_in_bytes", "1000\n");
    for (const char* f : {"memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.kmem.tcp.limit_in_bytes",
                          "memory.swappiness", "memory.oom_control", "memory.use_hierarchy"})
      fs_.file("memory/" + c + f);
    fs_.file("devices/" + c + "devices.allow");
    fs_.file("devices/" + c + "devices.deny");
    fs_.file("freezer/" + c + "freezer.state", "THAWED\n");
    for (const char* f : {"blkio.bfq.weight", "blkio.bfq.weight_device", "blkio.throttle.read_bps_device",
                          "blkio.throttle.write_bps_device", "blkio.throttle.read_iops_device",
                          "blkio.throttle.write_iops_device"})
      fs_.file("blkio/" + c + f);
    fs_.file("pids/" + c + "pids.max");
    fs_.file("unified/cgroup.controllers", "hugetlb\n");
    fs_.file("unified/cgroup.subtree_control", "\n");
    fs_.file("unified/vessel/cgroup.controllers", "hugetlb\n");
    fs_.file("unified/vessel/cgroup.subtree_control", "\n");
    fs_.file("unified/" + c + "cgroup.controllers", "hugetlb\n");
    fs_.file("unified/" + c + "hugetlb.2MB.max");
    fs_.file("unified/" + c + "hugetlb.2MB.rsvd.max");
  }

  std::unique_ptr<Manager> create() {
    Options o;
    o.container_id = "c1";
    o.root = fs_.root();
    o.mountinfo = kHybridMountinfo;
    o.proc_cgroup = kHybridProcCgroup;
    o.write_log = &log_;
    auto m = Manager::create(o);
    EXPECT_TRUE(m) << m.error().message();
    return m ? std::move(*m) : nullptr;
  }

  std::string leaf(const std::string& hierarchy, const std::string& file) {
    return fs_.read(hierarchy + "/vessel/c1/" + file);
  }

  FakeCgroupFs fs_;
  WriteLog log_;
};

TEST_F(HybridTest, CreateCopiesCpusetDownAndEnablesV2Controllers) {
  auto m = create();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->layout(), Layout::kHybrid);
  EXPECT_EQ(fs_.read("cpuset/vessel/cpuset.cpus"), "0-3");
  EXPECT_EQ(fs_.read("cpuset/vessel/c1/cpuset.cpus"), "0-3");
  EXPECT_EQ(fs_.read("cpuset/vessel/c1/cpuset.mems"), "0");
  EXPECT_EQ(fs_.read("unified/cgroup.subtree_control"), "+hugetlb");
  EXPECT_EQ(fs_.read("unified/vessel/cgroup.subtree_control"), "+hugetlb");
  EXPECT_EQ(m->dir_for("memory"), fs_.path("memory/vessel/c1"));
  EXPECT_EQ(m->dir_for("hugetlb"), fs_.path("unified/vessel/c1"));
  EXPECT_EQ(m->dir_for(""), fs_.path("unified/vessel/c1"));
  EXPECT_EQ(m->dir_for("net_cls"), "");
}

TEST_F(HybridTest, AddProcessJoinsEveryHierarchy) {
  auto m = create();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_process(4242));
  for (const char* h : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
                        "unified"})
    EXPECT_EQ(leaf(h, "cgroup.procs"), "4242") << h;
}

TEST_F(HybridTest, ApplyWritesEveryV1Controller) {
  auto m = create();
  ASSERT_TRUE(m);
  auto r = oci::parse_resources(nlohmann::json::parse(R"({
    "memory": {"limit": 104857600, "reservation": 52428800, "swap": 209715200, "kernelTCP": 1048576,
               "swappiness": 10, "disableOOMKiller": true, "useHierarchy": true},
    "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "realtimePeriod": 1000000,
            "realtimeRuntime": 950000, "idle": 0, "cpus": "0-1", "mems": "0"},
    "pids": {"limit": 64},
    "blockIO": {"weight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 500}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 100}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}]
  })"));
  ASSERT_TRUE(r) << r.error().message();
  auto st = m->apply(*r);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(leaf("memory", "memory.limit_in_bytes"), "104857600");
  EXPECT_EQ(leaf("memory", "memory.memsw.limit_in_bytes"), "209715200");
  EXPECT_EQ(leaf("memory", "memory.soft_limit_in_bytes"), "52428800");
  EXPECT_EQ(leaf("memory", "memory.kmem.tcp.limit_in_bytes"), "1048576");
  EXPECT_EQ(leaf("memory", "memory.swappiness"), "10");
  EXPECT_EQ(leaf("memory", "memory.oom_control"), "1");
  EXPECT_EQ(leaf("memory", "memory.use_hierarchy"), "1");
  // Lowering from "unlimited": memory limit first, then memsw.
  EXPECT_LT(index_of(log_, "memory.limit_in_bytes=104857600"), index_of(log_, "memory.memsw.limit_in_bytes=209715200"));
  EXPECT_EQ(leaf("cpu", "cpu.shares"), "512");
  EXPECT_EQ(leaf("cpu", "cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(leaf("cpu", "cpu.cfs_period_us"), "100000");
  EXPECT_EQ(leaf("cpu", "cpu.cfs_burst_us"), "1000");
  EXPECT_EQ(leaf("cpu", "cpu.rt_period_us"), "1000000");
  EXPECT_EQ(leaf("cpu", "cpu.rt_runtime_us"), "950000");
  EXPECT_EQ(leaf("cpu", "cpu.idle"), "0");
  EXPECT_EQ(leaf("cpuset", "cpuset.cpus"), "0-1");
  EXPECT_EQ(leaf("cpuset", "cpuset.mems"), "0");
  EXPECT_EQ(leaf("pids", "pids.max"), "64");
  EXPECT_EQ(leaf("blkio", "blkio.bfq.weight"), "300");  // no CFQ blkio.weight in the fake: BFQ
  EXPECT_EQ(leaf("blkio", "blkio.bfq.weight_device"), "8:0 500");
  EXPECT_EQ(leaf("blkio", "blkio.throttle.read_bps_device"), "8:0 1048576");
  EXPECT_EQ(leaf("blkio", "blkio.throttle.write_iops_device"), "8:16 100");
  EXPECT_EQ(leaf("blkio", "blkio.throttle.write_bps_device"), "");  // unset: not written
  // hugetlb lives in the v2 hierarchy on this layout.
  EXPECT_EQ(leaf("unified", "hugetlb.2MB.max"), "4194304");
  EXPECT_EQ(leaf("unified", "hugetlb.2MB.rsvd.max"), "4194304");
}

TEST_F(HybridTest, RaisingTheMemoryLimitWritesMemswFirst) {
  fs_.file("memory/vessel/c1/memory.limit_in_bytes", "1000\n");
  auto m = create();
  ASSERT_TRUE(m);
  oci::LinuxResources r;
  r.memory = oci::LinuxMemory{};
  r.memory->limit = 2000;
  r.memory->swap = 3000;
  ASSERT_TRUE(m->apply(r));
  EXPECT_LT(index_of(log_, "memory.memsw.limit_in_bytes=3000"), index_of(log_, "memory.limit_in_bytes=2000"));
}

TEST_F(HybridTest, UnsetFieldsAreNotWritten) {
  auto m = create();
  ASSERT_TRUE(m);
  log_.clear();
  oci::LinuxResources r;
  r.memory = oci::LinuxMemory{};
  r.cpu = oci::LinuxCpu{};
  r.pids = oci::LinuxPids{};
  ASSERT_TRUE(m->apply(r));
  EXPECT_TRUE(log_.empty());
  EXPECT_EQ(leaf("pids", "pids.max"), "");
}

TEST_F(HybridTest, SwapWithoutSwapAccountingIsAnErrorUnlessItChangesNothing) {
  ASSERT_EQ(::unlink(fs_.path("memory/vessel/c1/memory.memsw.limit_in_bytes").c_str()), 0);
  auto m = create();
  ASSERT_TRUE(m);
  oci::LinuxResources r;
  r.memory = oci::LinuxMemory{};
  r.memory->limit = 1000;
  r.memory->swap = 1000;  // no swap allowed: nothing to account
  ASSERT_TRUE(m->apply(r));
  EXPECT_EQ(leaf("memory", "memory.limit_in_bytes"), "1000");
  r.memory->swap = 3000;
  auto st = m->apply(r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("no swap accounting"), std::string::npos) << st.error().message();
}

TEST_F(HybridTest, CheckBeforeUpdateRefusesALimitBelowUsage) {
  auto m = create();
  ASSERT_TRUE(m);
  oci::LinuxResources r;
  r.memory = oci::LinuxMemory{};
  r.memory->limit = 500;
  r.memory->check_before_update = true;
  auto st = m->apply(r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("below the current usage"), std::string::npos) << st.error().message();
  r.memory->limit = 5000;
  EXPECT_TRUE(m->apply(r));
}

TEST_F(HybridTest, DevicesDenyAllThenRulesInOrder) {
  auto m = create();
  ASSERT_TRUE(m);
  log_.clear();
  auto r = oci::parse_resources(nlohmann::json::parse(R"({"devices": [
    {"allow": false, "access": "rwm"},
    {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
    {"allow": true, "type": "c", "major": 136, "access": "rw"},
    {"allow": false, "type": "b", "major": 8, "minor": 0, "access": "w"}]})"));
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_TRUE(m->apply(*r));
  EXPECT_EQ(log_, (WriteLog{"devices.deny=a", "devices.allow=c 1:3 rwm", "devices.allow=c 136:* rw",
                            "devices.deny=b 8:0 w"}));
}

TEST_F(HybridTest, MissingControllersAndV2OnlyFieldsAreClearErrors) {
  auto m = create();
  ASSERT_TRUE(m);
  oci::LinuxResources r;
  r.network = oci::LinuxNetwork{};
  r.network->class_id = 0x100001;
  auto st = m->apply(r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("linux.resources.network.classID: the net_cls controller is not available"),
            std::string::npos)
      << st.error().message();

  oci::LinuxResources u;
  u.unified["memory.high"] = "1G";
  st = m->apply(u);
  ASSERT_FALSE(st);
  // As runc: unified keys on a hybrid host are an invalid configuration, refused before any write.
  EXPECT_NE(st.error().message().find("invalid configuration: linux.resources.unified: cannot use unified on cgroup v1"),
            std::string::npos)
      << st.error().message();

  oci::LinuxResources h;
  h.hugepage_limits.push_back({"1GB", 1 << 30});
  st = m->apply(h);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("page size 1GB is not supported"), std::string::npos) << st.error().message();
}

TEST_F(HybridTest, FreezeUsesTheV1Freezer) {
  auto m = create();
  ASSERT_TRUE(m);
  EXPECT_FALSE(*m->frozen());
  ASSERT_TRUE(m->freeze());
  EXPECT_EQ(leaf("freezer", "freezer.state"), "FROZEN");
  EXPECT_TRUE(*m->frozen());
  ASSERT_TRUE(m->thaw());
  EXPECT_EQ(leaf("freezer", "freezer.state"), "THAWED");
}

TEST_F(HybridTest, PidsAreReadRecursively) {
  auto m = create();
  ASSERT_TRUE(m);
  fs_.file("freezer/vessel/c1/cgroup.procs", "12\n7\n");
  fs_.file("freezer/vessel/c1/sub/cgroup.procs", "99\n7\n");
  auto pids = m->pids();
  ASSERT_TRUE(pids) << pids.error().message();
  EXPECT_EQ(*pids, (std::vector<pid_t>{7, 12, 99}));
}

TEST_F(HybridTest, SaveAndLoadKeepTheHierarchies) {
  auto m = create();
  ASSERT_TRUE(m);
  auto loaded = Manager::load(m->save());
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ((*loaded)->layout(), Layout::kHybrid);
  EXPECT_EQ((*loaded)->save(), m->save());
  auto mounts = (*loaded)->mounts();
  ASSERT_EQ(mounts.size(), 10u);
  EXPECT_EQ(mounts[0].mountpoint, fs_.path("cpu"));
  EXPECT_EQ(mounts[0].fstype, "cgroup");
  EXPECT_EQ(mounts[0].options, "cpu");
  EXPECT_EQ(mounts[0].path, "/vessel/c1");
  EXPECT_EQ(mounts[8].options, "name=systemd");
  EXPECT_EQ(mounts[9].fstype, "cgroup2");
  EXPECT_EQ(mounts[9].mountpoint, fs_.path("unified"));
  EXPECT_FALSE(Manager::load("{"));
  EXPECT_FALSE(Manager::load(R"({"layout": "v3"})"));
}

// A v1 host on an empty tree: directories are really created and removed.
class V1TreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* h : {"systemd", "cpu,cpuacct", "memory", "pids", "net_cls,net_prio"}) fs_.dir(h);
  }
  Options options(const std::string& path) {
    Options o;
    o.container_id = "c1";
    o.cgroups_path = path;
    o.root = fs_.root();
    o.mountinfo = kV1Mountinfo;
    o.proc_cgroup = "5:pids:/user\n4:memory:/user\n3:cpu,cpuacct:/user\n2:net_cls,net_prio:/\n1:name=systemd:/user\n";
    return o;
  }
  FakeCgroupFs fs_;
};

TEST_F(V1TreeTest, RelativePathGoesBelowTheRuntimesCgroupAndDestroyRemovesWhatWasCreated) {
  fs_.dir("memory/user/pod");  // exists already: must survive destroy
  auto m = Manager::create(options("pod/c1"));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ((*m)->layout(), Layout::kV1);
  EXPECT_TRUE(fs_.exists("cpu,cpuacct/user/pod/c1"));
  EXPECT_TRUE(fs_.exists("memory/user/pod/c1"));
  EXPECT_TRUE(fs_.exists("net_cls,net_prio/pod/c1"));
  EXPECT_EQ((*m)->mounts()[1].options, "cpu,cpuacct");

  auto loaded = Manager::load((*m)->save());
  ASSERT_TRUE(loaded);
  fs_.dir("memory/user/pod/c1/nested");  // a cgroup the container made
  ASSERT_TRUE((*loaded)->destroy());
  EXPECT_FALSE(fs_.exists("cpu,cpuacct/user"));
  EXPECT_FALSE(fs_.exists("memory/user/pod/c1"));
  EXPECT_TRUE(fs_.exists("memory/user/pod"));
  EXPECT_FALSE(fs_.exists("net_cls,net_prio/pod"));
  EXPECT_TRUE((*loaded)->destroy()) << "idempotent";
}

TEST_F(V1TreeTest, UnifiedNeedsV2) {
  auto m = Manager::create(options(""));
  ASSERT_TRUE(m);
  EXPECT_TRUE(fs_.exists("memory/vessel/c1"));
  oci::LinuxResources r;
  r.unified["memory.high"] = "1G";
  auto st = (*m)->apply(r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("invalid configuration: linux.resources.unified: cannot use unified on cgroup v1"),
            std::string::npos)
      << st.error().message();
  ASSERT_TRUE((*m)->destroy());
  EXPECT_FALSE(fs_.exists("memory/vessel"));
}

TEST(V1Create, FailureLeavesNothingBehind) {
  FakeCgroupFs fs;
  fs.dir("memory");
  fs.dir("cpuset");  // no cpuset.cpus to copy from: creation fails
  Options o;
  o.container_id = "c1";
  o.root = fs.root();
  o.mountinfo =
      "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "34 31 0:31 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset\n";
  o.proc_cgroup = "4:memory:/\n3:cpuset:/\n";
  auto m = Manager::create(o);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("initialise cpuset"), std::string::npos) << m.error().message();
  EXPECT_FALSE(fs.exists("memory/vessel"));
  EXPECT_FALSE(fs.exists("cpuset/vessel"));
}

}  // namespace
}  // namespace vessel::cgroups
