// Shared fixture for container integration tests: a busybox bundle in a temp
// dir, a private state root, and a runner for the real vessel binary.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vessel::testing {

struct Output {
  int status = -1;  // exit code, or 128+signal
  std::string out;
  std::string err;
};

// The runtime under test: $VESSEL when set (e.g. VESSEL=runc runs the same tests against runc),
// else the vessel binary of this build.
std::string runtime_binary();
// True when $VESSEL names another runtime (runc, crun): tests of vessel's extensions skip.
bool testing_peer();

// Runs `args` (argv[0] is the program) with `input` on stdin; kills it after `timeout_s`.
Output run_command(const std::vector<std::string>& args, const std::string& input = "", int timeout_s = 60);

// A listening unix stream socket at `path` (as conmon's console socket or a seccomp agent); -1 on failure.
int listen_unix(const std::string& path);
// Accepts one connection on `srv` and receives one message with an fd (SCM_RIGHTS).
// Returns the fd (-1 when none came) and stores the message text in *payload.
int accept_fd(int srv, std::string* payload = nullptr);

// True when `pid` exists and is not a zombie.
bool process_running(int pid);

// Starts `args` with `env` ("NAME=value") added to ours, stdio on /dev/null; returns its pid.
pid_t spawn(const std::vector<std::string>& args, const std::vector<std::string>& env = {});
// Waits up to `timeout_ms` for a child from spawn(): its exit code or 128+signal; -1 on timeout.
int wait_exit(pid_t pid, int timeout_ms);
// The mount points of every cgroup hierarchy of this host (v1 and v2).
std::vector<std::string> cgroup_mounts();
// Pids of live processes whose environment holds `entry` ("NAME=value").
std::vector<int> processes_with_env(const std::string& entry);

// Skips the current test (with the reason) unless we are root.
#define VESSEL_REQUIRE_ROOT()                                        \
  do {                                                               \
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (containers)"; \
  } while (0)

class ContainerTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // RUNTIME --root <root_> ARGS... (RUNTIME: runtime_binary())
  Output vessel(const std::vector<std::string>& args, const std::string& input = "", int timeout_s = 60);
  // Writes config_ to bundle_/config.json.
  void write_config();
  // Sets process.args to `sh -c script`.
  void set_script(const std::string& script);
  // Runs the bundle in the foreground as `id` and returns its output.
  Output run_script(const std::string& script, const std::string& id = "c1");
  // The lines of /proc/self/mountinfo (mount points only), for leak checks.
  static std::vector<std::string> mount_points();
  // Entries of the state root.
  std::vector<std::string> state_entries() const;
  // The cgroup path vessel gives container `id` of this state root when the config names
  // none ("/vessel/<id>-<hash of the root>"), relative to each hierarchy's mount point.
  std::string cgroup_path(const std::string& id) const;

  std::string dir_;     // temp dir holding everything
  std::string bundle_;  // bundle dir (config.json + rootfs/)
  std::string root_;    // --root
  nlohmann::json config_;
};

// The whole of a (test-owned, small) file; "" when it cannot be read.
inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

}  // namespace vessel::testing
