// A container owns exactly the cgroup vessel created for it: processes and cgroups
// that are not its own survive create, delete and kill --all (issue #11, item 1).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>

#include "cgroups/paths.h"
#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class Ownership : public ContainerTest {
 protected:
  void TearDown() override {
    for (pid_t v : victims_) {
      ::kill(v, SIGKILL);
      ::waitpid(v, nullptr, 0);
    }
    for (const auto& r : extra_roots_)
      for (const auto& id : {"c1", "c2"}) run_command({VESSEL_BINARY, "--root", r, "delete", "--force", id});
    ContainerTest::TearDown();
    // The cgroups this test made, innermost first, once their processes are gone.
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      for (int i = 0; i < 100 && ::rmdir(it->c_str()) < 0 && errno == EBUSY; ++i) ::usleep(10000);
    }
  }

  // A host process that is not any container's (a forked copy of this test, paused).
  pid_t victim() {
    pid_t pid = ::fork();
    if (pid == 0) {
      for (;;) ::pause();
    }
    victims_.push_back(pid);
    return pid;
  }

  // Makes cgroup `path` in every hierarchy (cpuset gets its parent's cpus and mems).
  void make_cgroup(const std::string& path) {
    for (const auto& mp : cgroup_mounts()) {
      std::string dir = mp + path;
      ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0) << dir << ": " << std::strerror(errno);
      made_.push_back(dir);
      if (mp.find("cpuset") != std::string::npos) {
        for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
          std::ifstream in(mp + "/" + f);
          std::string v;
          std::getline(in, v);
          std::ofstream(dir + "/" + f) << v;
        }
      }
    }
  }

  // Moves `pid` into cgroup `path` of every hierarchy.
  void join_cgroup(pid_t pid, const std::string& path) {
    for (const auto& mp : cgroup_mounts()) {
      std::ofstream f(mp + path + "/cgroup.procs");
      f << pid << std::flush;
      EXPECT_TRUE(f.good()) << "join " << mp + path;
    }
  }

  bool cgroup_everywhere(const std::string& path) {
    for (const auto& mp : cgroup_mounts())
      if (::access((mp + path).c_str(), F_OK) != 0) return false;
    return true;
  }

  bool cgroup_anywhere(const std::string& path) {
    for (const auto& mp : cgroup_mounts())
      if (::access((mp + path).c_str(), F_OK) == 0) return true;
    return false;
  }

  std::string unique(const std::string& what) { return "/owner-itest-" + std::to_string(::getpid()) + "-" + what; }

  void share_host_pid_namespace() {
    Json kept = Json::array();
    for (auto& ns : config_["linux"]["namespaces"])
      if (ns["type"] != "pid") kept.push_back(ns);
    config_["linux"]["namespaces"] = kept;
  }

  int pid_of(const std::string& id, const std::string& root) {
    Output st = run_command({VESSEL_BINARY, "--root", root, "state", id});
    if (st.status != 0) return 0;
    return Json::parse(st.out)["pid"];
  }

  std::vector<pid_t> victims_;
  std::vector<std::string> made_;
  std::vector<std::string> extra_roots_;
};

// cgroupsPath naming a cgroup with a process in it: refused as runc (>= 1.2) does;
// the process and the cgroup are left as they were.
TEST_F(Ownership, NonEmptyNamedCgroupIsRefusedAndLeftAlone) {
  std::string cg = unique("busy");
  make_cgroup(cg);
  pid_t v = victim();
  join_cgroup(v, cg);
  config_["linux"]["cgroupsPath"] = cg;
  set_script("exec sleep 1000");
  write_config();
  Output o = vessel({"create", "--bundle", bundle_, "c1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("container's cgroup is not empty: 1 process(es)"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("linux.cgroupsPath"), std::string::npos) << o.err;
  EXPECT_TRUE(process_running(v)) << "victim killed";
  EXPECT_TRUE(cgroup_everywhere(cg)) << "foreign cgroup removed";
  EXPECT_TRUE(state_entries().empty());
}

// An empty existing cgroup is joined, not owned: a host process that enters it later
// survives `kill --all` and `delete`, and the cgroup stays (host pid namespace: the
// container's processes could only be found through the cgroup).
TEST_F(Ownership, JoinedCgroupIsNeverKilledOrRemovedHostPidNamespace) {
  std::string cg = unique("shared-host");
  make_cgroup(cg);
  config_["linux"]["cgroupsPath"] = cg;
  share_host_pid_namespace();
  set_script("exec sleep 1000");
  write_config();
  Output r = vessel({"run", "-d", "--bundle", bundle_, "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  int init = pid_of("c1", root_);
  ASSERT_GT(init, 0);
  pid_t v = victim();
  join_cgroup(v, cg);
  Output k = vessel({"kill", "--all", "c1", "KILL"});
  EXPECT_EQ(k.status, 0) << k.err;
  for (int i = 0; i < 200 && process_running(init); ++i) ::usleep(10000);
  EXPECT_FALSE(process_running(init)) << "kill --all missed the init";
  EXPECT_TRUE(process_running(v)) << "kill --all killed a process that is not the container's";
  Output d = vessel({"delete", "--force", "c1"});
  EXPECT_EQ(d.status, 0) << d.err;
  EXPECT_TRUE(process_running(v)) << "delete killed a process that is not the container's";
  EXPECT_TRUE(cgroup_everywhere(cg)) << "delete removed a cgroup vessel did not create";
  EXPECT_TRUE(state_entries().empty());
}

TEST_F(Ownership, JoinedCgroupIsNeverKilledOrRemovedOwnPidNamespace) {
  std::string cg = unique("shared-own");
  make_cgroup(cg);
  config_["linux"]["cgroupsPath"] = cg;
  set_script("sleep 1000 & exec sleep 1000");
  write_config();
  Output r = vessel({"run", "-d", "--bundle", bundle_, "c1"});
  ASSERT_EQ(r.status, 0) << r.err;
  int init = pid_of("c1", root_);
  pid_t v = victim();
  join_cgroup(v, cg);
  Output d = vessel({"delete", "--force", "c1"});
  EXPECT_EQ(d.status, 0) << d.err;
  EXPECT_FALSE(process_running(init));
  EXPECT_TRUE(process_running(v)) << "delete killed a process that is not the container's";
  EXPECT_TRUE(cgroup_everywhere(cg));
  // Only the victim is left in it: the container's second sleep died with its pid namespace.
  std::ifstream procs(cgroup_mounts().front() + cg + "/cgroup.procs");
  std::string all((std::istreambuf_iterator<char>(procs)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, std::to_string(v) + "\n");
}

// The same ID under two --roots: two cgroups, and delete -f in one leaves the other running.
TEST_F(Ownership, SameIdInTwoRootsDoesNotShareACgroup) {
  std::string root2 = dir_ + "/state2";
  extra_roots_.push_back(root2);
  set_script("exec sleep 1000");
  write_config();
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0);
  Output r2 = run_command({VESSEL_BINARY, "--root", root2, "run", "-d", "--bundle", bundle_, "c1"});
  ASSERT_EQ(r2.status, 0) << r2.err;
  std::string cg1 = cgroup_path("c1"), cg2 = "/vessel/" + cgroups::default_cgroup_name("c1", root2);
  EXPECT_NE(cg1, cg2);
  EXPECT_TRUE(cgroup_everywhere(cg1));
  EXPECT_TRUE(cgroup_everywhere(cg2));
  int pid1 = pid_of("c1", root_), pid2 = pid_of("c1", root2);
  Output d = run_command({VESSEL_BINARY, "--root", root2, "delete", "--force", "c1"});
  EXPECT_EQ(d.status, 0) << d.err;
  EXPECT_FALSE(process_running(pid2));
  EXPECT_FALSE(cgroup_anywhere(cg2));
  EXPECT_TRUE(process_running(pid1)) << "delete in another root killed this root's container";
  EXPECT_EQ(Json::parse(vessel({"state", "c1"}).out)["status"], "running");
  EXPECT_TRUE(cgroup_everywhere(cg1)) << "delete in another root removed this root's cgroup";
  EXPECT_EQ(vessel({"delete", "--force", "c1"}).status, 0);
  EXPECT_FALSE(cgroup_anywhere(cg1));
}

// A create that fails after joining an existing cgroup removes nothing of it (no
// foreign child cgroup, no multi-second retries), and what it made itself goes.
TEST_F(Ownership, FailedCreateLeavesTheForeignCgroupAndItsChildren) {
  std::string cg = unique("parent");
  make_cgroup(cg);
  make_cgroup(cg + "/foreign");
  config_["linux"]["cgroupsPath"] = cg;
  config_["process"]["args"] = {"/no/such/program"};
  write_config();
  auto t0 = std::chrono::steady_clock::now();
  Output o = vessel({"create", "--bundle", bundle_, "c1"});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(o.status, 0);
  // It fails either applying the device rules (v1 refuses them below a cgroup with
  // children) or at the missing program: after joining the cgroup, both.
  EXPECT_NE(o.err.find("create c1"), std::string::npos) << o.err;
  EXPECT_LT(secs, 3.0) << "retry loops over a foreign cgroup";
  EXPECT_TRUE(cgroup_everywhere(cg + "/foreign")) << "a foreign child cgroup was removed";
  EXPECT_TRUE(state_entries().empty());

  // Below it, in a cgroup the create makes itself: that one goes again, the parent stays.
  config_["linux"]["cgroupsPath"] = cg + "/made-by-vessel";
  write_config();
  Output o2 = vessel({"create", "--bundle", bundle_, "c1"});
  EXPECT_NE(o2.status, 0);
  EXPECT_FALSE(cgroup_anywhere(cg + "/made-by-vessel"));
  EXPECT_TRUE(cgroup_everywhere(cg + "/foreign"));
}

// The root cgroup and paths with ".." are refused at once; a bystander process and
// its cgroup are untouched (before: `cgroupsPath: "/"` tried to remove every cgroup).
TEST_F(Ownership, RootAndEscapingCgroupPathsAreRefused) {
  std::string bystander = unique("bystander");
  make_cgroup(bystander);
  pid_t v = victim();
  join_cgroup(v, bystander);
  set_script("exec sleep 1000");
  for (const char* path : {"/", "//", "/a/../..", "../../x", "/owner-x/../../.."}) {
    config_["linux"]["cgroupsPath"] = path;
    write_config();
    auto t0 = std::chrono::steady_clock::now();
    Output o = vessel({"create", "--bundle", bundle_, "c1"});
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_NE(o.status, 0) << path;
    EXPECT_NE(o.err.find("cgroup"), std::string::npos) << path << ": " << o.err;
    EXPECT_LT(secs, 2.0) << path;
    EXPECT_TRUE(process_running(v)) << path;
    EXPECT_TRUE(cgroup_everywhere(bystander)) << path;
    EXPECT_TRUE(state_entries().empty()) << path;
  }
}

}  // namespace
}  // namespace vessel::testing
