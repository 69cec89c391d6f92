// vessel exec into running, paused and terminal containers.
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class Exec : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    config_["hostname"] = "exec-box";
    config_["process"]["env"].push_back("FROM_CONFIG=yes");
    set_script("exec sleep 1000");
    write_config();
    ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "c1"}).status, 0);
  }
};

TEST_F(Exec, JoinsNamespacesAndReturnsStatus) {
  Output o = vessel({"exec", "c1", "sh", "-c", "hostname; echo $FROM_CONFIG; cat /proc/1/cmdline | tr '\\0' ' '; exit 5"});
  EXPECT_EQ(o.status, 5) << o.err;
  EXPECT_EQ(o.out, "exec-box\nyes\nsleep 1000 ");
  // Same namespaces as the init.
  Output ns = vessel({"exec", "c1", "sh", "-c", "for n in pid mnt net uts ipc cgroup; do readlink /proc/self/ns/$n; readlink /proc/1/ns/$n; done"});
  auto lines = ns.out;
  std::istringstream ss(lines);
  std::string a, b;
  int pairs = 0;
  while (std::getline(ss, a) && std::getline(ss, b)) {
    EXPECT_EQ(a, b);
    ++pairs;
  }
  EXPECT_EQ(pairs, 6);
}

TEST_F(Exec, FlagsOverrideTheProcess) {
  Output o = vessel({"exec", "--env", "A=1", "-e", "FROM_CONFIG=no", "--cwd", "/dev", "--user", "1000:2000", "--cap",
                     "CAP_NET_RAW", "--no-new-privs", "c1", "sh", "-c",
                     "echo $A $FROM_CONFIG; pwd; id -u; id -g; grep -E 'Cap|NoNewPrivs' /proc/self/status"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("1 no\n/dev\n1000\n2000\n"), std::string::npos) << o.out;
  // --cap adds to bounding (CAP_NET_RAW = 13: 0x2000), never to inheritable or ambient
  // (CVE-2022-29162): a non-root process has no capability left after its execve.
  EXPECT_NE(o.out.find("CapBnd:\t0000000020002420"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapEff:\t0000000000000000"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapAmb:\t0000000000000000"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("NoNewPrivs:\t1"), std::string::npos) << o.out;
}

TEST_F(Exec, ProcessFileAndDetachWithPidFile) {
  std::string pf = dir_ + "/process.json";
  std::ofstream(pf) << Json{{"args", {"sh", "-c", "echo from-file > /dev/shm/out; sleep 1000"}}, {"cwd", "/"}}.dump();
  std::string pidfile = dir_ + "/exec.pid";
  ASSERT_EQ(vessel({"exec", "--process", pf, "--detach", "--pid-file", pidfile, "c1"}).status, 0);
  int pid = 0;
  std::ifstream(pidfile) >> pid;
  EXPECT_GT(pid, 0);
  EXPECT_TRUE(process_running(pid));
  for (int i = 0; i < 100; ++i) {
    if (vessel({"exec", "c1", "cat", "/dev/shm/out"}).out == "from-file\n") break;
    ::usleep(20000);
  }
  EXPECT_EQ(vessel({"exec", "c1", "cat", "/dev/shm/out"}).out, "from-file\n");
  ASSERT_EQ(vessel({"delete", "-f", "c1"}).status, 0);
  for (int i = 0; i < 100 && process_running(pid); ++i) ::usleep(10000);
  EXPECT_FALSE(process_running(pid)) << "exec'd process survived delete --force";
}

TEST_F(Exec, TerminalWithoutConsoleSocketIsRelayed) {
  Output o = vessel({"exec", "-t", "c1", "sh", "-c", "test -t 1 && echo tty-ok"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("tty-ok"), std::string::npos) << o.out;
}

TEST_F(Exec, PausedNeedsIgnorePaused) {
  Output st = vessel({"state", "c1"});
  int pid = Json::parse(st.out)["pid"];
  std::string freezer = "/sys/fs/cgroup/freezer" + cgroup_path("c1") + "/freezer.state";
  if (::access(freezer.c_str(), W_OK) != 0) GTEST_SKIP() << "no v1 freezer at " << freezer;
  std::ofstream(freezer) << "FROZEN";
  EXPECT_EQ(Json::parse(vessel({"state", "c1"}).out)["status"], "paused");
  Output o = vessel({"exec", "c1", "true"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("paused"), std::string::npos) << o.err;
  Output d = vessel({"exec", "--ignore-paused", "-d", "c1", "true"});
  EXPECT_EQ(d.status, 0) << d.err;
  std::ofstream(freezer) << "THAWED";
  (void)pid;
}

TEST_F(Exec, BadInput) {
  Output o = vessel({"exec", "c1", "no-such-cmd"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("exec: \"no-such-cmd\": executable file not found in $PATH"), std::string::npos) << o.err;
  o = vessel({"exec", "--user", "abc", "c1", "true"});
  EXPECT_NE(o.err.find("--user abc: expected UID[:GID]"), std::string::npos) << o.err;
  o = vessel({"exec", "ghost", "true"});
  EXPECT_NE(o.err.find("container \"ghost\" does not exist"), std::string::npos) << o.err;
  ASSERT_EQ(vessel({"kill", "c1", "KILL"}).status, 0);
  for (int i = 0; i < 100 && Json::parse(vessel({"state", "c1"}).out)["status"] != "stopped"; ++i) ::usleep(10000);
  o = vessel({"exec", "c1", "true"});
  EXPECT_NE(o.err.find("is stopped"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace vessel::testing
