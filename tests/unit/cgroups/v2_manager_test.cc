// The manager on a fake pure cgroup v2 tree.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>

#include "cgroups/manager.h"
#include "unit/cgroups/fake_cgroupfs.h"

namespace vessel::cgroups {
namespace {

using namespace testing;

constexpr const char* kControllers = "cpuset cpu io memory hugetlb pids rdma\n";

class V2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* d : {"", "machine/"}) {
      fs_.file(std::string(d) + "cgroup.controllers", kControllers);
      fs_.file(std::string(d) + "cgroup.subtree_control", "\n");
    }
    fs_.file(c_ + "cgroup.controllers", kControllers);
    fs_.file(c_ + "cpu.max", "max 100000\n");
    fs_.file(c_ + "memory.max", "max\n");
    fs_.file(c_ + "memory.current", "4096\n");
    fs_.file(c_ + "cgroup.freeze", "0\n");
    fs_.file(c_ + "cgroup.events", "populated 0\nfrozen 0\n");
    for (const char* f : {"memory.low", "memory.swap.max", "memory.high", "cpu.weight", "cpu.max.burst", "cpu.idle",
                          "cpuset.cpus", "cpuset.mems", "pids.max", "io.weight", "io.max", "hugetlb.2MB.max",
                          "rdma.max", "cgroup.procs", "cgroup.kill"})
      fs_.file(c_ + f);
  }

  std::unique_ptr<Manager> create() {
    Options o;
    o.container_id = "c1";
    o.cgroups_path = "/machine/c1";
    o.root = fs_.root();
    o.mountinfo = kV2Mountinfo;
    o.proc_cgroup = "0::/user.slice/session-1.scope\n";
    o.write_log = &log_;
    o.device_installer = &devices_;
    auto m = Manager::create(o);
    EXPECT_TRUE(m) << m.error().message();
    return m ? std::move(*m) : nullptr;
  }
  std::string leaf(const std::string& file) { return fs_.read(c_ + file); }
  Status apply_json(Manager& m, const char* text) {
    auto r = oci::parse_resources(nlohmann::json::parse(text));
    if (!r) return std::move(r).error();
    return m.apply(*r);
  }

  FakeCgroupFs fs_;
  WriteLog log_;
  FakeDeviceInstaller devices_;
  const std::string c_ = "machine/c1/";
};

TEST_F(V2Test, CreateEnablesControllersInEveryAncestor) {
  auto m = create();
  ASSERT_TRUE(m);
  EXPECT_EQ(m->layout(), Layout::kV2);
  EXPECT_EQ(std::count(log_.begin(), log_.end(), "cgroup.subtree_control=+memory"), 2);
  EXPECT_EQ(std::count(log_.begin(), log_.end(), "cgroup.subtree_control=+pids"), 2);
  auto mounts = m->mounts();
  ASSERT_EQ(mounts.size(), 1u);
  EXPECT_EQ(mounts[0].fstype, "cgroup2");
  EXPECT_EQ(mounts[0].mountpoint, fs_.root());
  EXPECT_EQ(mounts[0].path, "/machine/c1");
}

TEST_F(V2Test, ApplyConvertsToV2Files) {
  auto m = create();
  ASSERT_TRUE(m);
  auto st = apply_json(*m, R"({
    "memory": {"limit": 104857600, "reservation": 52428800, "swap": 314572800, "useHierarchy": true},
    "cpu": {"shares": 1024, "quota": 50000, "burst": 1000, "idle": 1, "cpus": "0", "mems": "0"},
    "pids": {"limit": -1},
    "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
    "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 1000}},
    "unified": {"memory.high": "90000000"}
  })");
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(leaf("memory.max"), "104857600");
  EXPECT_EQ(leaf("memory.low"), "52428800");
  EXPECT_EQ(leaf("memory.swap.max"), "209715200");  // swap - limit
  EXPECT_EQ(leaf("cpu.weight"), "39");
  EXPECT_EQ(leaf("cpu.max"), "50000 100000");
  EXPECT_EQ(leaf("cpu.max.burst"), "1000");
  EXPECT_EQ(leaf("cpu.idle"), "1");
  EXPECT_EQ(leaf("cpuset.cpus"), "0");
  EXPECT_EQ(leaf("pids.max"), "max");
  EXPECT_EQ(leaf("io.weight"), "4950");
  EXPECT_EQ(leaf("io.max"), "8:0 rbps=1048576");
  EXPECT_EQ(leaf("hugetlb.2MB.max"), "2097152");
  EXPECT_EQ(leaf("rdma.max"), "mlx5_0 hca_handle=3 hca_object=1000");
  EXPECT_EQ(leaf("memory.high"), "90000000");

  // An update of the period alone keeps the quota.
  ASSERT_TRUE(apply_json(*m, R"({"cpu": {"period": 200000}})"));
  EXPECT_EQ(leaf("cpu.max"), "50000 200000");
  ASSERT_TRUE(apply_json(*m, R"({"cpu": {"quota": -1}})"));
  EXPECT_EQ(leaf("cpu.max"), "max 200000");
  // Swap alone is relative to the current memory.max.
  ASSERT_TRUE(apply_json(*m, R"({"memory": {"swap": 209715200}})"));
  EXPECT_EQ(leaf("memory.swap.max"), "104857600");
  ASSERT_TRUE(apply_json(*m, R"({"memory": {"limit": -1}})"));
  EXPECT_EQ(leaf("memory.max"), "max");
  EXPECT_EQ(leaf("memory.swap.max"), "max");
}

TEST_F(V2Test, BfqWeightIsWrittenAsIs) {
  fs_.file(c_ + "io.bfq.weight");
  auto m = create();
  ASSERT_TRUE(m);
  ASSERT_TRUE(apply_json(*m, R"({"blockIO": {"weight": 500}})"));
  EXPECT_EQ(leaf("io.bfq.weight"), "500");
  EXPECT_EQ(leaf("io.weight"), "");
}

TEST_F(V2Test, UnsupportedSettingsAreClearErrors) {
  auto m = create();
  ASSERT_TRUE(m);
  auto expect_error = [&](const char* json, const char* text) {
    auto st = apply_json(*m, json);
    ASSERT_FALSE(st) << json;
    EXPECT_NE(st.error().message().find(text), std::string::npos) << st.error().message();
  };
  expect_error(R"({"memory": {"swappiness": 10}})", "swappiness: not supported on cgroup v2");
  expect_error(R"({"memory": {"limit": 100, "swap": 50}})", "is below memory.limit");
  expect_error(R"({"cpu": {"realtimeRuntime": 1000}})", "not supported on cgroup v2");
  expect_error(R"({"network": {"classID": 1}})", "net_cls controller is not available");
  expect_error(R"({"unified": {"memory.oom.group": "1"}})", "no such file");
  expect_error(R"({"unified": {"../../etc/passwd": "x"}})", "not a cgroup control file name");
  expect_error(R"({"devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1099511627776}]})",
               "linux.resources.devices: rule 1: major 1099511627776: out of range");
  devices_.fail = true;
  expect_error(R"({"devices": [{"allow": false, "access": "rwm"}]})",
               "linux.resources.devices: load eBPF device program: Operation not permitted");
  EXPECT_TRUE(devices_.installed.empty());
}

TEST_F(V2Test, DeviceRulesBecomeAProgramOnTheCgroup) {
  auto m = create();
  ASSERT_TRUE(m);
  ASSERT_TRUE(apply_json(*m, R"({"devices": [{"allow": false, "access": "rwm"},
               {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]})"));
  ASSERT_EQ(devices_.installed.size(), 1u);
  EXPECT_EQ(devices_.installed[0].first, fs_.path("machine/c1"));
  EXPECT_FALSE(devices_.installed[0].second.empty());
  // update: a new program each time; no control file is written for devices.
  ASSERT_TRUE(apply_json(*m, R"({"devices": [{"allow": true, "access": "rwm"}]})"));
  EXPECT_EQ(devices_.installed.size(), 2u);
  for (const auto& w : log_) EXPECT_EQ(w.find("devices."), std::string::npos) << w;
  // No device rules: the program stays as it is.
  ASSERT_TRUE(apply_json(*m, R"({"pids": {"limit": 5}})"));
  EXPECT_EQ(devices_.installed.size(), 2u);
}

TEST_F(V2Test, MissingControllerIsAnError) {
  fs_.file(c_ + "cgroup.controllers", "cpu memory\n");
  auto m = create();
  ASSERT_TRUE(m);
  auto st = apply_json(*m, R"({"pids": {"limit": 10}})");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("linux.resources.pids.limit: the pids controller is not available"),
            std::string::npos)
      << st.error().message();
  EXPECT_TRUE(apply_json(*m, R"({"pids": {}})")) << "unset needs nothing";
}

TEST_F(V2Test, FreezeWaitsForCgroupEvents) {
  auto m = create();
  ASSERT_TRUE(m);
  EXPECT_FALSE(*m->frozen());
  fs_.file(c_ + "cgroup.events", "populated 1\nfrozen 1\n");  // what the kernel will say
  ASSERT_TRUE(m->freeze());
  EXPECT_EQ(leaf("cgroup.freeze"), "1");
  EXPECT_TRUE(*m->frozen());
  fs_.file(c_ + "cgroup.events", "populated 1\nfrozen 0\n");
  ASSERT_TRUE(m->thaw());
  EXPECT_EQ(leaf("cgroup.freeze"), "0");
  EXPECT_FALSE(*m->frozen());
}

TEST_F(V2Test, KillAllUsesCgroupKill) {
  auto m = create();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->kill_all(SIGKILL));
  EXPECT_EQ(leaf("cgroup.kill"), "1");
}

TEST_F(V2Test, AddProcessAndPids) {
  auto m = create();
  ASSERT_TRUE(m);
  ASSERT_TRUE(m->add_process(77));
  EXPECT_EQ(leaf("cgroup.procs"), "77");
  auto pids = m->pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, std::vector<pid_t>{77});
}

}  // namespace
}  // namespace vessel::cgroups
