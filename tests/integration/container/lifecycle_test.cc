// The create/start/state/kill/delete lifecycle through the real binary.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class Lifecycle : public ContainerTest {};

Json state_of(Output o) { return Json::parse(o.out); }

TEST_F(Lifecycle, RunPrintsFromInsideTheContainer) {
  Output o = run_script("echo pid=$$; hostname; cat /proc/self/mountinfo | wc -l");
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("pid=1\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("vessel\n"), std::string::npos) << o.out;
  EXPECT_TRUE(state_entries().empty()) << "foreground run deletes the container";
}

TEST_F(Lifecycle, RunExitsWithTheProcessStatus) {
  EXPECT_EQ(run_script("exit 7").status, 7);
  // Killed from outside (pid 1 of a pid namespace cannot SIGKILL itself): 128+9.
  set_script("exec sleep 1000");
  write_config();
  std::thread killer([&] {
    for (int i = 0; i < 300; ++i) {
      Output st = vessel({"state", "c1"});
      if (st.status == 0 && Json::parse(st.out)["status"] == "running") break;
      ::usleep(10000);
    }
    vessel({"kill", "c1", "KILL"});
  });
  Output o = vessel({"run", "--bundle", bundle_, "c1"});
  killer.join();
  EXPECT_EQ(o.status, 128 + SIGKILL) << o.err;
}

TEST_F(Lifecycle, CreateStartStateKillDelete) {
  set_script("echo started > /tmp/x; exec sleep 1000");
  write_config();
  std::string pidfile = dir_ + "/pid";
  Output o = vessel({"create", "--bundle", bundle_, "--pid-file", pidfile, "c1"});
  ASSERT_EQ(o.status, 0) << o.err;
  Json st = state_of(vessel({"state", "c1"}));
  EXPECT_EQ(st["status"], "created");
  EXPECT_EQ(st["id"], "c1");
  EXPECT_EQ(st["bundle"], bundle_);
  EXPECT_EQ(st["rootfs"], bundle_ + "/rootfs");
  EXPECT_TRUE(st.contains("created") && st.contains("owner") && st.contains("ociVersion"));
  int pid = st["pid"];
  std::ifstream pf(pidfile);
  int from_file = 0;
  pf >> from_file;
  EXPECT_EQ(from_file, pid);
  EXPECT_TRUE(process_running(pid));

  ASSERT_EQ(vessel({"start", "c1"}).status, 0);
  EXPECT_EQ(state_of(vessel({"state", "c1"}))["status"], "running");
  Output again = vessel({"start", "c1"});
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.err.find("running"), std::string::npos) << again.err;

  Output del = vessel({"delete", "c1"});
  EXPECT_NE(del.status, 0) << "delete of a running container needs --force";
  EXPECT_NE(del.err.find("not stopped"), std::string::npos) << del.err;

  ASSERT_EQ(vessel({"kill", "c1", "KILL"}).status, 0);
  for (int i = 0; i < 100 && state_of(vessel({"state", "c1"}))["status"] != "stopped"; ++i) ::usleep(20000);
  EXPECT_EQ(state_of(vessel({"state", "c1"}))["status"], "stopped");
  ASSERT_EQ(vessel({"delete", "c1"}).status, 0);
  EXPECT_TRUE(state_entries().empty());
  EXPECT_NE(vessel({"state", "c1"}).status, 0);
}

TEST_F(Lifecycle, KillAcceptsNamesAndNumbers) {
  // A shell as pid 1 ignores TERM unless it traps it.
  set_script("trap 'exit 42' TERM; while true; do sleep 0.1; done");
  write_config();
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0);
  EXPECT_NE(vessel({"kill", "c1", "SIGNOPE"}).status, 0);
  ASSERT_EQ(vessel({"kill", "c1", "15"}).status, 0);
  for (int i = 0; i < 100 && state_of(vessel({"state", "c1"}))["status"] != "stopped"; ++i) ::usleep(20000);
  EXPECT_EQ(state_of(vessel({"state", "c1"}))["status"], "stopped");
  EXPECT_EQ(vessel({"delete", "c1"}).status, 0);
}

TEST_F(Lifecycle, ForegroundRunForwardsSignals) {
  set_script("trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done");
  write_config();
  std::thread killer([&] {
    for (int i = 0; i < 200; ++i) {
      Output st = vessel({"state", "c1"});
      if (st.status == 0 && Json::parse(st.out)["status"] == "running") break;
      ::usleep(10000);
    }
    ::usleep(200000);
    Output l = run_command({"pkill", "-TERM", "-f", "--", "--root " + root_ + " run"});
    (void)l;
  });
  Output o = vessel({"run", "--bundle", bundle_, "c1"});
  killer.join();
  EXPECT_EQ(o.status, 3) << o.out << o.err;
  EXPECT_NE(o.out.find("got-term"), std::string::npos);
}

TEST_F(Lifecycle, ListFormats) {
  set_script("exec sleep 1000");
  write_config();
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "a1"}).status, 0);
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "a2"}).status, 0);
  EXPECT_EQ(vessel({"list", "-q"}).out, "a1\na2\n");
  Json j = Json::parse(vessel({"list", "--format", "json"}).out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["status"], "created");
  Output t = vessel({"list"});
  EXPECT_NE(t.out.find("ID"), std::string::npos);
  EXPECT_NE(t.out.find("a2"), std::string::npos);
  EXPECT_EQ(vessel({"delete", "--force", "a1"}).status, 0);
  EXPECT_EQ(vessel({"delete", "-f", "a2"}).status, 0);
  EXPECT_EQ(vessel({"list", "-q"}).out, "");
}

TEST_F(Lifecycle, DeleteForceLeavesNothingBehind) {
  auto before = mount_points();
  set_script("exec sleep 1000");
  write_config();
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0);
  int pid = state_of(vessel({"state", "c1"}))["pid"];
  ASSERT_EQ(vessel({"delete", "--force", "c1"}).status, 0);
  EXPECT_FALSE(process_running(pid)) << "init still alive";
  EXPECT_TRUE(state_entries().empty());
  EXPECT_EQ(mount_points(), before);
  EXPECT_NE(::access(("/sys/fs/cgroup/memory" + cgroup_path("c1")).c_str(), F_OK), 0) << "cgroup left behind";
  EXPECT_NE(::access(("/sys/fs/cgroup/unified" + cgroup_path("c1")).c_str(), F_OK), 0) << "cgroup left behind";
}

TEST_F(Lifecycle, DeleteOfCreatedContainerKillsItsInit) {
  write_config();
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "c1"}).status, 0);
  int pid = state_of(vessel({"state", "c1"}))["pid"];
  ASSERT_EQ(vessel({"delete", "--force", "c1"}).status, 0);
  EXPECT_FALSE(process_running(pid));
  EXPECT_TRUE(state_entries().empty());
}

TEST_F(Lifecycle, ConcurrentCommandsOnOneRoot) {
  set_script("exec sleep 1000");
  write_config();
  std::vector<std::thread> ts;
  std::vector<int> rc(8, -1);
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([&, i] { rc[i] = vessel({"create", "--bundle", bundle_, "p" + std::to_string(i % 4)}).status; });
  for (auto& t : ts) t.join();
  // Each of the four ids was created exactly once; the duplicates failed cleanly.
  EXPECT_EQ(std::count(rc.begin(), rc.end(), 0), 4);
  EXPECT_EQ(vessel({"list", "-q"}).out, "p0\np1\np2\np3\n");
  ts.clear();
  for (int i = 0; i < 4; ++i) ts.emplace_back([&, i] { vessel({"delete", "-f", "p" + std::to_string(i)}); });
  for (int i = 0; i < 4; ++i) ts.emplace_back([&, i] { vessel({"state", "p" + std::to_string(i)}); });
  for (auto& t : ts) t.join();
  EXPECT_TRUE(state_entries().empty());
}

TEST_F(Lifecycle, SpecAndFeatures) {
  std::string b2 = dir_ + "/b2";
  ::mkdir(b2.c_str(), 0755);
  ASSERT_EQ(vessel({"spec", "--bundle", b2, "--rootless"}).status, 0);
  std::ifstream f(b2 + "/config.json");
  Json c = Json::parse(f);
  EXPECT_EQ(c["linux"]["uidMappings"][0]["hostID"], ::getuid());
  Output again = vessel({"spec", "--bundle", b2});
  EXPECT_NE(again.status, 0);
  EXPECT_NE(again.err.find("already exists"), std::string::npos);
  Json feat = Json::parse(vessel({"features"}).out);
  EXPECT_EQ(feat["ociVersionMax"], "1.2.0");
  EXPECT_EQ(feat["linux"]["namespaces"].size(), 8u);
}

TEST_F(Lifecycle, SystemdCgroupIsAClearError) {
  write_config();
  Output o = vessel({"--systemd-cgroup", "create", "--bundle", bundle_, "c1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("--systemd-cgroup"), std::string::npos) << o.err;
  EXPECT_TRUE(state_entries().empty());
}

}  // namespace
}  // namespace vessel::testing
