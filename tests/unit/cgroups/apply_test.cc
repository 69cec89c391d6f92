// Manager::apply as engines use it: zeros that mean "not set", and updates that
// apply all of their fields or none.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "cgroups/manager.h"
#include "unit/cgroups/fake_cgroupfs.h"

namespace vessel::cgroups {
namespace {

using namespace testing;

// linux.resources of a `docker run` without limits (Docker 20.10), and of its `docker update --pids-limit 64`.
constexpr const char* kDockerRun = R"({
  "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0, "disableOOMKiller": false},
  "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": ""},
  "pids": {"limit": 0},
  "blockIO": {"weight": 0}
})";
constexpr const char* kDockerUpdatePids = R"({
  "memory": {"limit": 0, "reservation": 0, "swap": 0, "kernel": 0, "kernelTCP": 0},
  "cpu": {"shares": 0, "quota": 0, "period": 0, "realtimeRuntime": 0, "realtimePeriod": 0, "cpus": "", "mems": ""},
  "pids": {"limit": 64},
  "blockIO": {"weight": 0}
})";

constexpr const char* kUnlimited = "9223372036854771712";

Result<oci::LinuxResources> parse(const char* text) { return oci::parse_resources(nlohmann::json::parse(text)); }

// A hybrid host like the build machine (v1 controllers, v2 with hugetlb only).
class HybridApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string c = "vessel/c1/";
    for (const char* h : {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
                          "unified"})
      fs_.file(std::string(h) + "/" + c + "cgroup.procs");
    fs_.file("cpu/" + c + "cpu.shares", "1024\n");
    fs_.file("cpu/" + c + "cpu.cfs_quota_us", "-1\n");
    fs_.file("cpu/" + c + "cpu.cfs_period_us", "100000\n");
    for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
      fs_.file(std::string("cpuset/") + f, "0\n");
      fs_.file(std::string("cpuset/vessel/") + f, "0\n");
      fs_.file("cpuset/" + c + f, "0\n");
    }
    fs_.file("memory/" + c + "memory.limit_in_bytes", std::string(kUnlimited) + "\n");
    fs_.file("memory/" + c + "memory.memsw.limit_in_bytes", std::string(kUnlimited) + "\n");
    fs_.file("memory/" + c + "memory.soft_limit_in_bytes", std::string(kUnlimited) + "\n");
    fs_.file("memory/" + c + "memory.usage_in_bytes", "1000\n");
    fs_.file("blkio/" + c + "blkio.bfq.weight", "100\n");
    fs_.file("pids/" + c + "pids.max", "max\n");
    for (const char* d : {"unified/", "unified/vessel/", "unified/vessel/c1/"}) {
      fs_.file(std::string(d) + "cgroup.controllers", "hugetlb\n");
      fs_.file(std::string(d) + "cgroup.subtree_control", "\n");
    }
    Options o;
    o.container_id = "c1";
    o.root = fs_.root();
    o.mountinfo = kHybridMountinfo;
    o.proc_cgroup = kHybridProcCgroup;
    o.write_log = &log_;
    auto m = Manager::create(o);
    ASSERT_TRUE(m) << m.error().message();
    m_ = std::move(*m);
    log_.clear();
  }

  Status apply(const char* text) {
    auto r = parse(text);
    if (!r) return std::move(r).error();
    return m_->apply(*r);
  }
  std::string leaf(const std::string& hierarchy, const std::string& file) {
    return fs_.read(hierarchy + "/vessel/c1/" + file);
  }

  FakeCgroupFs fs_;
  WriteLog log_;
  std::unique_ptr<Manager> m_;
};

TEST_F(HybridApplyTest, DockersZerosWriteNothing) {
  auto st = apply(kDockerRun);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(log_.empty()) << "first write: " << log_.front();
  EXPECT_EQ(leaf("cpu", "cpu.shares"), "1024\n") << "the kernel's default share stays";
  EXPECT_EQ(leaf("blkio", "blkio.bfq.weight"), "100\n") << "blkio.bfq.weight refuses 0";
  EXPECT_EQ(leaf("pids", "pids.max"), "max\n");
}

TEST_F(HybridApplyTest, AnUpdateAppliesOnlyWhatIsSet) {
  auto st = apply(kDockerUpdatePids);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(log_, WriteLog{"pids.max=64"});
}

TEST_F(HybridApplyTest, MinusOneMeansUnlimited) {
  ASSERT_TRUE(apply(R"({"pids": {"limit": 64}, "memory": {"limit": 1048576}})"));
  log_.clear();
  auto st = apply(R"({"pids": {"limit": -1}, "memory": {"limit": -1}, "cpu": {"quota": -1}})");
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(leaf("pids", "pids.max"), "max");
  EXPECT_EQ(leaf("memory", "memory.limit_in_bytes"), "-1");
  EXPECT_EQ(leaf("memory", "memory.memsw.limit_in_bytes"), "-1") << "unlimited memory without swap: swap unlimited too";
  EXPECT_EQ(leaf("cpu", "cpu.cfs_quota_us"), "-1");
}

TEST_F(HybridApplyTest, AMissingFileFailsTheWholeUpdateBeforeAnyWrite) {
  ASSERT_EQ(::unlink(fs_.path("pids/vessel/c1/pids.max").c_str()), 0);
  auto st = apply(R"({"memory": {"limit": 1048576}, "cpu": {"shares": 512}, "pids": {"limit": 64}})");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("pids.max"), std::string::npos) << st.error().message();
  EXPECT_TRUE(log_.empty()) << "first write: " << log_.front();
  EXPECT_EQ(leaf("memory", "memory.limit_in_bytes"), std::string(kUnlimited) + "\n");
  EXPECT_EQ(leaf("cpu", "cpu.shares"), "1024\n");
}

TEST_F(HybridApplyTest, AValueOutOfRangeFailsTheWholeUpdateBeforeAnyWrite) {
  for (const char* text : {R"({"memory": {"limit": 1048576}, "cpu": {"shares": 1}})",
                           R"({"memory": {"limit": 1048576}, "cpu": {"shares": 300000}})",
                           R"({"memory": {"limit": 1048576}, "blockIO": {"weight": 5}})",
                           R"({"memory": {"limit": 1048576}, "blockIO": {"weight": 1001}})"}) {
    auto st = apply(text);
    ASSERT_FALSE(st) << text;
    EXPECT_TRUE(log_.empty()) << text << ": first write: " << log_.front();
  }
  auto st = apply(R"({"cpu": {"shares": 1}})");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("linux.resources.cpu.shares: 1 is outside the kernel's range [2, 262144]"),
            std::string::npos)
      << st.error().message();
}

TEST_F(HybridApplyTest, LimitsMustFitTheCurrentOnes) {
  ASSERT_TRUE(apply(R"({"memory": {"limit": 1048576, "swap": 2097152}})"));
  log_.clear();
  // memory alone above the current memory+swap limit: the kernel would refuse it.
  auto st = apply(R"({"memory": {"limit": 4194304}, "pids": {"limit": 10}})");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("linux.resources.memory.limit: 4194304 is above the current memory+swap limit 2097152"),
            std::string::npos)
      << st.error().message();
  // swap alone below the current memory limit.
  st = apply(R"({"memory": {"swap": 524288}})");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("linux.resources.memory.swap: 524288 is below the current memory limit 1048576"),
            std::string::npos)
      << st.error().message();
  st = apply(R"({"memory": {"limit": 4194304, "swap": 2097152}})");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("is below memory.limit"), std::string::npos) << st.error().message();
  EXPECT_TRUE(log_.empty()) << "first write: " << log_.front();
  // Both together, growing: memsw first.
  st = apply(R"({"memory": {"limit": 4194304, "swap": 8388608}})");
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(log_, (WriteLog{"memory.memsw.limit_in_bytes=8388608", "memory.limit_in_bytes=4194304"}));
}

TEST_F(HybridApplyTest, AWriteTheKernelRefusesRollsBackTheEarlierOnes) {
  ASSERT_TRUE(apply(R"({"memory": {"limit": 1048576, "swap": 2097152}, "cpu": {"shares": 256}})"));
  // pids.max as a directory: present for the check pass, refused (EISDIR) by the write.
  ASSERT_EQ(::unlink(fs_.path("pids/vessel/c1/pids.max").c_str()), 0);
  ASSERT_EQ(::mkdir(fs_.path("pids/vessel/c1/pids.max").c_str(), 0755), 0);
  log_.clear();
  auto st = apply(R"({"memory": {"limit": 4194304, "swap": 8388608}, "cpu": {"shares": 512, "quota": 50000},
                      "pids": {"limit": 64}})");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("pids.max"), std::string::npos) << st.error().message();
  EXPECT_EQ(log_.back(), "pids.max=64") << "the writes before it were made";
  EXPECT_EQ(leaf("memory", "memory.limit_in_bytes"), "1048576");
  EXPECT_EQ(leaf("memory", "memory.memsw.limit_in_bytes"), "2097152");
  EXPECT_EQ(leaf("cpu", "cpu.shares"), "256");
  EXPECT_EQ(leaf("cpu", "cpu.cfs_quota_us"), "-1");
}

// Pure cgroup v2.
class V2ApplyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    constexpr const char* kControllers = "cpuset cpu io memory hugetlb pids\n";
    for (const char* d : {"", "machine/"}) {
      fs_.file(std::string(d) + "cgroup.controllers", kControllers);
      fs_.file(std::string(d) + "cgroup.subtree_control", "\n");
    }
    fs_.file(c_ + "cgroup.controllers", kControllers);
    fs_.file(c_ + "cgroup.procs");
    fs_.file(c_ + "cpu.max", "max 100000\n");
    fs_.file(c_ + "cpu.weight", "100\n");
    fs_.file(c_ + "memory.max", "max\n");
    fs_.file(c_ + "memory.swap.max", "max\n");
    fs_.file(c_ + "memory.low", "0\n");
    fs_.file(c_ + "io.bfq.weight", "default 100\n");
    fs_.file(c_ + "pids.max", "max\n");
    Options o;
    o.container_id = "c1";
    o.cgroups_path = "/machine/c1";
    o.root = fs_.root();
    o.mountinfo = kV2Mountinfo;
    o.proc_cgroup = "0::/\n";
    o.write_log = &log_;
    auto m = Manager::create(o);
    ASSERT_TRUE(m) << m.error().message();
    m_ = std::move(*m);
    log_.clear();
  }
  Status apply(const char* text) {
    auto r = parse(text);
    if (!r) return std::move(r).error();
    return m_->apply(*r);
  }
  std::string leaf(const std::string& file) { return fs_.read(c_ + file); }

  FakeCgroupFs fs_;
  WriteLog log_;
  std::unique_ptr<Manager> m_;
  const std::string c_ = "machine/c1/";
};

TEST_F(V2ApplyTest, DockersZerosWriteNothing) {
  auto st = apply(kDockerRun);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(log_.empty()) << "first write: " << log_.front();
  EXPECT_EQ(leaf("cpu.weight"), "100\n");
  EXPECT_EQ(leaf("io.bfq.weight"), "default 100\n");
}

TEST_F(V2ApplyTest, QuotaAloneKeepsThePeriodAndMinusOneIsMax) {
  ASSERT_TRUE(apply(R"({"cpu": {"quota": 50000, "period": 0}})"));
  EXPECT_EQ(leaf("cpu.max"), "50000 100000");
  ASSERT_TRUE(apply(R"({"cpu": {"quota": -1}, "pids": {"limit": -1}})"));
  EXPECT_EQ(leaf("cpu.max"), "max 100000");
  EXPECT_EQ(leaf("pids.max"), "max");
}

TEST_F(V2ApplyTest, AWriteTheKernelRefusesRollsBackTheEarlierOnes) {
  ASSERT_EQ(::unlink(fs_.path(c_ + "pids.max").c_str()), 0);
  ASSERT_EQ(::mkdir(fs_.path(c_ + "pids.max").c_str(), 0755), 0);
  auto st = apply(R"({"memory": {"limit": 1048576, "swap": 2097152}, "cpu": {"quota": 20000, "shares": 512},
                      "pids": {"limit": 64}})");
  ASSERT_FALSE(st);
  EXPECT_EQ(log_.back(), "pids.max=64");
  EXPECT_EQ(leaf("memory.max"), "max");
  EXPECT_EQ(leaf("memory.swap.max"), "max");
  EXPECT_EQ(leaf("cpu.max"), "max 100000");
  EXPECT_EQ(leaf("cpu.weight"), "100");
}

}  // namespace
}  // namespace vessel::cgroups
