// Foreground `run` with a terminal whose reader goes away, and `run` on a second
// SIGTERM (issue #11, item 5): vessel ends, the container is killed and deleted.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

class TerminalRelay : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    mark_ = "OWNER_RELAY_MARK=" + std::to_string(::getpid()) + "-" + dir_.substr(dir_.rfind('-') + 1);
    config_["process"]["env"].push_back(mark_);
  }

  // Runs `shell` (bash) and returns its output and how long it took.
  Output timed_shell(const std::string& shell, double* secs) {
    auto t0 = std::chrono::steady_clock::now();
    Output o = run_command({"bash", "-c", shell}, "", 60);
    *secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return o;
  }

  std::string run_cmd() const {
    return std::string(VESSEL_BINARY) + " --root " + root_ + " run --bundle " + bundle_ + " c1";
  }

  std::string mark_;
};

// The container writes for ever; `head -c 100` takes 100 bytes and exits: vessel gets
// EPIPE, kills the container and exits instead of leaving it blocked on the pty.
TEST_F(TerminalRelay, ReaderThatExitsEndsTheRun) {
  config_["process"]["terminal"] = true;
  set_script("while :; do echo 0123456789; done");
  write_config();
  double secs = 0;
  Output o = timed_shell(run_cmd() + " | head -c 100 > " + dir_ + "/out; echo ${PIPESTATUS[0]}", &secs);
  EXPECT_LT(secs, 20.0) << "vessel run hung after its reader went away";
  EXPECT_EQ(o.out, std::to_string(128 + SIGKILL) + "\n") << o.err;
  std::ifstream f(dir_ + "/out", std::ios::binary);
  std::string out((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(out.size(), 100u);
  EXPECT_EQ(out.rfind("0123456789", 0), 0u) << out;
  EXPECT_TRUE(state_entries().empty()) << "container not deleted";
  EXPECT_EQ(processes_with_env(mark_), std::vector<int>{}) << "container process left";
}

// A silent container: the reader exits without vessel ever writing; stdout's hang-up
// (POLLERR on the pipe) is enough.
TEST_F(TerminalRelay, ReaderGoneWhileTheContainerIsSilent) {
  config_["process"]["terminal"] = true;
  set_script("exec sleep 1000");
  write_config();
  double secs = 0;
  Output o = timed_shell(run_cmd() + " | true; echo ${PIPESTATUS[0]}", &secs);
  EXPECT_LT(secs, 20.0);
  EXPECT_EQ(o.out, std::to_string(128 + SIGKILL) + "\n") << o.err;
  EXPECT_TRUE(state_entries().empty());
  EXPECT_EQ(processes_with_env(mark_), std::vector<int>{});
}

// The output of the container comes through whole when the reader stays, its line ends
// as the process wrote them (ONLCR off on the pty, as runc's relay does).
TEST_F(TerminalRelay, OutputIsRelayedToTheEnd) {
  config_["process"]["terminal"] = true;
  set_script("i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done");
  write_config();
  double secs = 0;
  Output o = timed_shell(run_cmd() + " | tail -n 1; echo ${PIPESTATUS[0]}", &secs);
  EXPECT_EQ(o.out, "line1999\n0\n") << o.err;
  EXPECT_TRUE(state_entries().empty());
}

// PID 1 ignores SIGTERM (no handler): the first is forwarded, the second kills it.
TEST_F(TerminalRelay, SecondSigtermEndsTheRun) {
  for (bool terminal : {false, true}) {
    SCOPED_TRACE(terminal ? "terminal" : "no terminal");
    config_["process"]["terminal"] = terminal;
    set_script("exec sleep 1000");
    write_config();
    pid_t pid = spawn({VESSEL_BINARY, "--root", root_, "run", "--bundle", bundle_, "c1"});
    bool running = false;
    for (int i = 0; i < 500 && !running; ++i) {
      Output st = vessel({"state", "c1"});
      running = st.status == 0 && Json::parse(st.out)["status"] == "running";
      if (!running) ::usleep(10000);
    }
    ASSERT_TRUE(running);
    ::kill(pid, SIGTERM);
    EXPECT_EQ(wait_exit(pid, 500), -1) << "the first SIGTERM is the container's to handle";
    ::kill(pid, SIGTERM);
    int st = wait_exit(pid, 10000);
    if (st < 0) ::kill(pid, SIGKILL), ::waitpid(pid, nullptr, 0);
    EXPECT_EQ(st, 128 + SIGKILL);
    EXPECT_TRUE(state_entries().empty());
    EXPECT_EQ(processes_with_env(mark_), std::vector<int>{});
  }
}

}  // namespace
}  // namespace vessel::testing
