// Crash injection (issue #11, item 2): `create` and `delete` are SIGKILLed at every
// crash point (VESSEL_CRASH_AT, common/crash_point.h) and after random delays; each
// time the half-made container is visible, `delete --force` removes everything it
// made (process, cgroups in every hierarchy, mounts, state) and the ID is reusable.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <set>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class Crash : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    // Every process of the container carries the mark: the init inherits vessel's
    // environment until it execs, and the configured one after.
    mark_ = "OWNER_CRASH_MARK=" + std::to_string(::getpid()) + "-" + dir_.substr(dir_.rfind('-') + 1);
    config_["process"]["env"].push_back(mark_);
    set_script("exec sleep 1000");
    write_config();
  }

  // Runs vessel ARGS with the crash variables in `env`; its exit code or 128+signal.
  int vessel_env(const std::vector<std::string>& args, const std::vector<std::string>& env, int timeout_ms = 30000) {
    std::vector<std::string> full = {VESSEL_BINARY, "--root", root_};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<std::string> e = env;
    e.push_back(mark_);
    pid_t pid = spawn(full, e);
    int st = wait_exit(pid, timeout_ms);
    if (st < 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    return st;
  }

  // The crash points one command passes through, in order.
  std::vector<std::string> trace(const std::vector<std::string>& args) {
    std::string file = dir_ + "/trace";
    ::unlink(file.c_str());
    EXPECT_EQ(vessel_env(args, {"VESSEL_CRASH_TRACE=" + file}), 0);
    std::ifstream f(file);
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (std::string line; std::getline(f, line);)
      if (seen.insert(line).second) out.push_back(line);
    return out;
  }

  // Everything container `id` may have left: described, one entry per leftover.
  std::vector<std::string> leftovers(const std::string& id) {
    std::vector<std::string> out;
    for (int pid : processes_with_env(mark_)) out.push_back("process " + std::to_string(pid));
    for (const auto& mp : cgroup_mounts())
      if (::access((mp + cgroup_path(id)).c_str(), F_OK) == 0) out.push_back("cgroup " + mp + cgroup_path(id));
    for (const auto& e : state_entries()) out.push_back("state " + e);
    if (::access((root_ + "/.tmp/" + id).c_str(), F_OK) == 0) out.push_back("state .tmp/" + id);
    // Only mounts of ours: other tests on the host mount and unmount meanwhile.
    for (const auto& m : mount_points())
      if (m.find(dir_) != std::string::npos) out.push_back("mount " + m);
    return out;
  }

  // After a crash: the container is removable, nothing is left, the ID is reusable.
  void expect_recovers(const std::string& where, bool listed) {
    SCOPED_TRACE(where);
    if (listed) {
      Output l = vessel({"list", "-q"});
      EXPECT_EQ(l.out, "c1\n") << "a half-made container must be visible";
      Output st = vessel({"state", "c1"});
      EXPECT_EQ(st.status, 0) << st.err;
      if (st.status == 0) {
        std::string status = Json::parse(st.out)["status"];
        EXPECT_TRUE(status == "stopped" || status == "creating" || status == "created" || status == "running")
            << status;
      }
    }
    Output d = vessel({"delete", "--force", "c1"});
    EXPECT_EQ(d.status, 0) << d.err;
    EXPECT_EQ(leftovers("c1"), std::vector<std::string>{});
    Output c = vessel({"create", "--bundle", bundle_, "c1"});
    EXPECT_EQ(c.status, 0) << "ID not reusable: " << c.err;
    EXPECT_EQ(vessel({"delete", "--force", "c1"}).status, 0);
    EXPECT_EQ(leftovers("c1"), std::vector<std::string>{});
  }

  // Kills create at each of its crash points; each time delete must remove everything.
  // Returns the points.
  std::vector<std::string> kill_create_everywhere() {
    auto points = trace({"create", "--bundle", bundle_, "c1"});
    EXPECT_EQ(vessel({"delete", "--force", "c1"}).status, 0);
    EXPECT_GE(points.size(), 10u) << "crash points of create";
    if (points.empty()) return points;
    EXPECT_EQ(points.front(), "create:tmp-dir");
    for (const auto& p : points) {
      int st = vessel_env({"create", "--bundle", bundle_, "c1"}, {"VESSEL_CRASH_AT=" + p});
      EXPECT_EQ(st, 128 + SIGKILL) << p;
      // Before its rename the directory is under .tmp: nothing to see yet, nothing made.
      expect_recovers(p, p != "create:tmp-dir");
    }
    std::printf("[ crash    ] create killed at %zu points, all recovered\n", points.size());
    return points;
  }

  std::string mark_;
};

TEST_F(Crash, KillingCreateAtEveryPointLeavesNothingDeleteCannotRemove) { kill_create_everywhere(); }

// Without a mount namespace the config's mounts are made in ours, under a bind of the
// rootfs: a create killed before or after that bind leaves nothing delete cannot remove.
TEST_F(Crash, KillingCreateWithoutAMountNamespaceLeavesNoMountOnTheHost) {
  auto& ns = config_["linux"]["namespaces"];
  for (size_t i = 0; i < ns.size(); ++i)
    if (ns[i]["type"] == "mount") ns.erase(i);
  write_config();
  auto points = kill_create_everywhere();
  EXPECT_NE(std::find(points.begin(), points.end(), "create:host-mount-saved"), points.end());
  EXPECT_NE(std::find(points.begin(), points.end(), "create:host-mounted"), points.end());
}

TEST_F(Crash, KillingDeleteAtEveryPointLeavesNothingTheNextDeleteCannotRemove) {
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0);
  auto points = trace({"delete", "--force", "c1"});
  ASSERT_GE(points.size(), 4u) << "crash points of delete";
  EXPECT_EQ(points.back(), "delete:lock-removed");
  for (const auto& p : points) {
    ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0) << p;
    int st = vessel_env({"delete", "--force", "c1"}, {"VESSEL_CRASH_AT=" + p});
    EXPECT_EQ(st, 128 + SIGKILL) << p;
    // Once its lock is gone the container is gone too (an empty directory is left,
    // which the next delete removes and a create replaces).
    expect_recovers(p, p != "delete:lock-removed");
  }
  // Killed after its lock went: a create of the ID replaces the empty directory at once.
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0);
  EXPECT_EQ(vessel_env({"delete", "--force", "c1"}, {"VESSEL_CRASH_AT=delete:lock-removed"}), 128 + SIGKILL);
  Output again = vessel({"create", "--bundle", bundle_, "c1"});
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(vessel({"delete", "--force", "c1"}).status, 0);
  EXPECT_EQ(leftovers("c1"), std::vector<std::string>{});
  // A plain delete (no --force) also finishes a create that died: it is stopped.
  EXPECT_EQ(vessel_env({"create", "--bundle", bundle_, "c1"}, {"VESSEL_CRASH_AT=create:ready"}), 128 + SIGKILL);
  EXPECT_EQ(Json::parse(vessel({"state", "c1"}).out)["status"], "stopped");
  Output d = vessel({"delete", "c1"});
  EXPECT_EQ(d.status, 0) << d.err;
  EXPECT_EQ(leftovers("c1"), std::vector<std::string>{});
  std::printf("[ crash    ] delete killed at %zu points, all recovered\n", points.size());
}

// SIGKILL after a random 0-50 ms, alternating `run -d` (create + start) and `delete --force`.
TEST_F(Crash, RandomKillsOfCreateAndDelete) {
  std::mt19937 rng(static_cast<unsigned>(::getpid()));
  std::uniform_int_distribution<int> delay_us(0, 50000);
  int completed = 0, killed = 0;
  for (int i = 0; i < 30; ++i) {
    bool kill_delete = i % 2 == 1;
    if (kill_delete) {
      ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0) << i;
    }
    std::vector<std::string> args = {VESSEL_BINARY, "--root", root_};
    if (kill_delete) {
      args.insert(args.end(), {"delete", "--force", "c1"});
    } else {
      args.insert(args.end(), {"run", "-d", "--bundle", bundle_, "c1"});
    }
    pid_t pid = spawn(args, {mark_});
    ::usleep(static_cast<useconds_t>(delay_us(rng)));
    ::kill(pid, SIGKILL);
    int st = wait_exit(pid, 30000);
    (st == 128 + SIGKILL ? killed : completed)++;
    Output d = vessel({"delete", "--force", "c1"});
    EXPECT_EQ(d.status, 0) << i << ": " << d.err;
    EXPECT_EQ(leftovers("c1"), std::vector<std::string>{}) << "iteration " << i;
    Output c = vessel({"create", "--bundle", bundle_, "c1"});
    EXPECT_EQ(c.status, 0) << i << ": ID not reusable: " << c.err;
    EXPECT_EQ(vessel({"delete", "--force", "c1"}).status, 0);
  }
  std::printf("[ crash    ] 30 random kills: %d killed mid-command, %d had finished; all recovered\n", killed, completed);
}

}  // namespace
}  // namespace vessel::testing
