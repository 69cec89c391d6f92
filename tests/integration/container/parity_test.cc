// runc parity (issue 17), defaults, the command line and the lifecycle: behaviours that
// scripts, tests and engines rely on, checked on the real binary. Each test also passes
// against runc (VESSEL=runc vessel_integration_tests --gtest_filter='Parity*'), except
// those marked as vessel's own (they skip there and say why).
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;

#define SKIP_FOR_PEER(why)                                                \
  do {                                                                    \
    if (testing_peer()) GTEST_SKIP() << "vessel's own behaviour: " << why; \
  } while (0)

class Parity : public ContainerTest {
 protected:
  // The pid of a container's init (0 when stopped or unknown).
  int init_pid(const std::string& id) {
    Output o = vessel({"state", id});
    if (o.status != 0) return 0;
    return Json::parse(o.out).value("pid", 0);
  }
  std::string status_of(const std::string& id) {
    Output o = vessel({"state", id});
    return o.status == 0 ? Json::parse(o.out).value("status", "") : "";
  }
  // Waits up to 10 s for `id` to reach `status`.
  bool wait_status(const std::string& id, const std::string& status) {
    for (int i = 0; i < 1000; ++i) {
      if (status_of(id) == status) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // The directory of `pid`'s cgroup in the v1 hierarchy of `controller`, "" without one.
  static std::string v1_cgroup_dir(int pid, const std::string& controller) {
    std::istringstream lines(slurp("/proc/" + std::to_string(pid) + "/cgroup"));
    std::string line;
    while (std::getline(lines, line)) {
      auto a = line.find(':'), b = line.find(':', a + 1);
      if (a == std::string::npos || b == std::string::npos) continue;
      std::string names = "," + line.substr(a + 1, b - a - 1) + ",";
      if (names.find("," + controller + ",") != std::string::npos) {
        std::string mount = "/sys/fs/cgroup/" + line.substr(a + 1, b - a - 1);
        if (::access(mount.c_str(), F_OK) != 0) mount = "/sys/fs/cgroup/" + controller;
        return mount + line.substr(b + 1);
      }
    }
    return "";
  }
  // Runs a detached container "c1" that sleeps.
  void run_sleeper(const std::string& id = "c1") {
    set_script("exec sleep 1000");
    write_config();
    ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, id}).status, 0);
  }
};

// --- Defaults and CLI ---------------------------------------------------------------

TEST_F(Parity, SpecWritesRuncsDefaults) {
  // config_ is what `spec` wrote (fixture).
  std::vector<std::string> ns;
  for (const auto& n : config_["linux"]["namespaces"]) ns.push_back(n["type"]);
  EXPECT_EQ(ns, (std::vector<std::string>{"pid", "network", "ipc", "uts", "mount"}));
  EXPECT_FALSE(config_["linux"].contains("seccomp")) << "runc spec writes no seccomp profile";
  Json caps = config_["process"]["capabilities"];
  Json three = Json::array({"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"});
  for (const char* set : {"bounding", "effective", "permitted", "ambient"}) EXPECT_EQ(caps[set], three) << set;
  EXPECT_FALSE(caps.contains("inheritable"));
  EXPECT_EQ(config_["process"]["rlimits"], Json::parse(R"([{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}])"));
  EXPECT_EQ(config_["process"]["noNewPrivileges"], true);
  EXPECT_EQ(config_["linux"]["maskedPaths"].size(), 10u);
  EXPECT_EQ(config_["linux"]["readonlyPaths"], Json::parse(R"(["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"])"));
  EXPECT_EQ(config_["linux"]["resources"]["devices"], Json::parse(R"([{"allow":false,"access":"rwm"}])"));
  // A script that adds a cgroup namespace to a `runc spec` config, and unshare works
  // (no seccomp profile in the way) with CAP_SYS_ADMIN.
  config_["linux"]["namespaces"].push_back({{"type", "cgroup"}});
  for (const char* set : {"bounding", "effective", "permitted"}) config_["process"]["capabilities"][set].push_back("CAP_SYS_ADMIN");
  config_["root"]["readonly"] = false;
  Output o = run_script("busybox unshare -U true 2>&1; echo rc=$?; readlink /proc/self/ns/cgroup");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("rc=0\ncgroup:["), std::string::npos) << o.out;
}

TEST_F(Parity, SpecHardenedIsVesselsProfile) {
  SKIP_FOR_PEER("spec --hardened");
  std::string b = dir_ + "/hard";
  ::mkdir(b.c_str(), 0755);
  ASSERT_EQ(vessel({"spec", "--hardened", "--bundle", b}).status, 0);
  Json c = Json::parse(slurp(b + "/config.json"));
  EXPECT_EQ(c["linux"]["namespaces"].back()["type"], "cgroup");
  EXPECT_TRUE(c["linux"]["seccomp"].contains("syscalls"));
  EXPECT_FALSE(c["process"]["capabilities"].contains("ambient"));
}

TEST_F(Parity, HelpOnEveryVerbAndVersion) {
  for (const char* verb : {"create", "start", "run", "exec", "state", "list", "kill", "delete", "pause", "resume",
                           "update", "events", "ps", "spec", "features"}) {
    Output h = run_command({runtime_binary(), verb, "-h"});
    EXPECT_EQ(h.status, 0) << verb << ": " << h.err;
    EXPECT_FALSE(h.out.empty()) << verb;
  }
  Output help = run_command({runtime_binary(), "help"});
  EXPECT_EQ(help.status, 0) << help.err;
  EXPECT_NE(help.out.find("exec"), std::string::npos) << help.out;
  Output help_exec = run_command({runtime_binary(), "help", "exec"});
  EXPECT_EQ(help_exec.status, 0) << help_exec.err;
  EXPECT_NE(help_exec.out.find("--pid-file"), std::string::npos) << help_exec.out;
  Output unknown = run_command({runtime_binary(), "frobnicate"});
  EXPECT_NE(unknown.status, 0);
  EXPECT_NE(unknown.err.find("frobnicate"), std::string::npos) << unknown.err;
  Output v = run_command({runtime_binary(), "--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_TRUE(std::regex_search(v.out, std::regex("^[a-z]+ version \\S+\n"))) << v.out;
  EXPECT_TRUE(std::regex_search(v.out, std::regex("\ncommit: \\S+\n"))) << v.out;
  EXPECT_TRUE(std::regex_search(v.out, std::regex("\nspec: [0-9.]+"))) << v.out;
}

TEST_F(Parity, DebugLogTextAndJsonLines) {
  run_sleeper();
  std::string text_log = dir_ + "/text.log", json_log = dir_ + "/json.log";
  ASSERT_EQ(vessel({"--debug", "--log", text_log, "exec", "c1", "true"}).status, 0);
  ASSERT_EQ(vessel({"--debug", "--log", json_log, "--log-format", "json", "exec", "c1", "true"}).status, 0);
  std::istringstream text(slurp(text_log));
  // runc may add key=value fields after msg (func=, file=...).
  std::regex form(R"re(^time="[0-9]{4}-[0-9]{2}-[0-9]{2}T[^"]+" level=(debug|info|warning|error) msg="([^"\\]|\\.)*"( |$))re");
  std::string line;
  int debug_lines = 0;
  while (std::getline(text, line)) {
    EXPECT_TRUE(std::regex_search(line, form)) << line;
    if (line.find("level=debug") != std::string::npos) ++debug_lines;
  }
  EXPECT_GT(debug_lines, 0) << "exec logs nothing under --debug";
  std::istringstream json(slurp(json_log));
  debug_lines = 0;
  while (std::getline(json, line)) {
    Json j = Json::parse(line);
    EXPECT_TRUE(j.contains("level") && j.contains("msg") && j.contains("time")) << line;
    if (j["level"] == "debug") ++debug_lines;
  }
  EXPECT_GT(debug_lines, 0);
}

TEST_F(Parity, ListJsonKeysInRuncsOrder) {
  run_sleeper();
  std::string out = vessel({"list", "--format", "json"}).out;
  size_t at = 0;
  for (const char* key : {"\"ociVersion\"", "\"id\"", "\"pid\"", "\"status\"", "\"bundle\"", "\"rootfs\"", "\"created\"",
                          "\"owner\""}) {
    size_t next = out.find(key, at);
    ASSERT_NE(next, std::string::npos) << key << " missing or out of order in " << out;
    at = next;
  }
}

TEST_F(Parity, KillSignalZero) {
  run_sleeper("live");
  EXPECT_EQ(vessel({"kill", "live", "0"}).status, 0) << "signal 0 to a running container";
  set_script("exit 0");
  write_config();
  ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "gone"}).status, 0);
  ASSERT_TRUE(wait_status("gone", "stopped"));
  Output all = vessel({"kill", "--all", "gone", "0"});
  EXPECT_EQ(all.status, 0) << all.err;
  Output one = vessel({"kill", "gone", "0"});
  EXPECT_NE(one.status, 0);
  EXPECT_NE(one.err.find("not running"), std::string::npos) << one.err;
}

// runc's init gets only its stdio and its own pipes (Go's exec passes no other fd); a
// created container that kept its caller's fds until start could hold a pipe's writer
// open (its reader waiting for the end) or a file busy (runc's create.bats checks it).
TEST_F(Parity, CreatedInitHoldsNoDescriptorOfItsCaller) {
  int leak[2];
  ASSERT_EQ(::pipe(leak), 0);  // not close-on-exec: the runtime inherits both ends
  struct stat pipe_st{};
  ASSERT_EQ(::fstat(leak[0], &pipe_st), 0);
  set_script("exec sleep 1000");
  write_config();
  Output c = vessel({"create", "--bundle", bundle_, "fd1"});
  ::close(leak[0]);
  ::close(leak[1]);
  ASSERT_EQ(c.status, 0) << c.err;
  int pid = init_pid("fd1");
  ASSERT_GT(pid, 0);
  std::string leaked = "pipe:[" + std::to_string(pipe_st.st_ino) + "]";
  int fds = 0;
  std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  for (int fd = 0; fd < 1024; ++fd) {
    char target[256] = {};
    if (::readlink((fd_dir + "/" + std::to_string(fd)).c_str(), target, sizeof target - 1) < 0) continue;
    ++fds;
    EXPECT_NE(std::string(target), leaked) << "fd " << fd << " of the created container's init";
  }
  EXPECT_GE(fds, 3) << "stdio at least";
  EXPECT_EQ(vessel({"delete", "--force", "fd1"}).status, 0);
}

// As runc 1.2 on (Debian's runc 1.1 kills only the init): SIGKILL to a container in the
// host's pid namespace kills every process in its cgroup, also after its init is gone.
TEST_F(Parity, KillKillsEveryProcessOfAContainerInTheHostPidNamespace) {
  SKIP_FOR_PEER("runc 1.1 signals only the init");
  auto& ns = config_["linux"]["namespaces"];
  for (size_t i = 0; i < ns.size(); ++i)
    if (ns[i]["type"] == "pid") ns.erase(i);
  std::string mark = "KILL_ALL_MARK=" + std::to_string(::getpid()) + "-" + dir_.substr(dir_.rfind('-') + 1);
  config_["process"]["env"].push_back(mark);
  for (bool init_gone : {false, true}) {
    SCOPED_TRACE(init_gone ? "init gone" : "init running");
    set_script("exec sleep 1000");
    write_config();
    ASSERT_EQ(vessel({"run", "-d", "--bundle", bundle_, "k1"}).status, 0);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(vessel({"exec", "-d", "k1", "sleep", "1000"}).status, 0);
    EXPECT_EQ(processes_with_env(mark).size(), 4u);
    if (init_gone) {
      int pid = init_pid("k1");
      ASSERT_GT(pid, 0);
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
      ASSERT_TRUE(wait_status("k1", "stopped"));
    }
    Output k = vessel({"kill", "k1", "KILL"});
    EXPECT_EQ(k.status, 0) << k.err;
    bool gone = false;
    for (int i = 0; i < 500 && !gone; ++i) {
      gone = processes_with_env(mark).empty();
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(gone) << "processes left: " << processes_with_env(mark).size();
    EXPECT_EQ(vessel({"delete", "--force", "k1"}).status, 0);
  }
}

// A file only its owner (root) may execute runs for another user holding CAP_DAC_OVERRIDE,
// as execve allows it (runc issue 3715: the check must use the effective capabilities).
TEST_F(Parity, ExecutableForItsOwnerOnlyRunsWithDacOverride) {
  std::string busybox = bundle_ + "/rootfs/bin/busybox";
  ASSERT_EQ(::chmod(busybox.c_str(), 0744), 0);
  config_["process"]["user"] = {{"uid", 1000}, {"gid", 100}};
  Output refused = run_script("echo ran", "d1");
  EXPECT_NE(refused.status, 0) << "uid 1000 without CAP_DAC_OVERRIDE may not execute it";
  for (const char* set : {"bounding", "effective", "permitted", "inheritable", "ambient"})
    config_["process"]["capabilities"][set].push_back("CAP_DAC_OVERRIDE");
  Output o = run_script("echo ran", "d2");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "ran\n");
  ::chmod(busybox.c_str(), 0755);
}

// exec --cap adds to bounding, effective and permitted, never inheritable (CVE-2022-29162),
// and to ambient when the config has inheritable capabilities (runc 1.2 on: capabilities.bats).
TEST_F(Parity, ExecCapAddsAmbientWhenTheConfigHasInheritable) {
  SKIP_FOR_PEER("runc 1.1 adds no ambient capability");
  config_["process"]["capabilities"] = {{"inheritable", {"CAP_CHOWN", "CAP_SYSLOG"}},
                                        {"permitted", {"CAP_KILL", "CAP_CHOWN"}},
                                        {"effective", {"CAP_KILL"}},
                                        {"bounding", {"CAP_KILL", "CAP_CHOWN", "CAP_SYSLOG"}},
                                        {"ambient", {"CAP_CHOWN"}}};
  run_sleeper("caps");
  Output o = vessel({"exec", "--cap", "CAP_SYSLOG", "caps", "grep", "^Cap", "/proc/self/status"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("CapInh:\t0000000400000001"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapPrm:\t0000000400000021"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapAmb:\t0000000400000001"), std::string::npos) << o.out;
}

TEST_F(Parity, ExecFailuresExit255) {
  run_sleeper();
  ASSERT_EQ(vessel({"pause", "c1"}).status, 0);
  Output paused = vessel({"exec", "c1", "true"});
  EXPECT_EQ(paused.status, 255) << paused.err;
  EXPECT_NE(paused.err.find("paused"), std::string::npos) << paused.err;
  ASSERT_EQ(vessel({"resume", "c1"}).status, 0);
  Output pid_file = vessel({"exec", "--pid-file", dir_ + "/no/such/dir/x.pid", "c1", "true"});
  EXPECT_EQ(pid_file.status, 255) << pid_file.err;
  EXPECT_EQ(vessel({"exec", "c1", "/no/such/binary"}).status, 255);
  EXPECT_EQ(vessel({"exec", "nosuchcontainer", "true"}).status, 255);
  EXPECT_EQ(vessel({"exec", "c1", "sh", "-c", "exit 7"}).status, 7) << "the process's own status";
}

TEST_F(Parity, UpdateSizesAndCpuShare) {
  run_sleeper();
  std::string mem = v1_cgroup_dir(init_pid("c1"), "memory");
  std::string cpu = v1_cgroup_dir(init_pid("c1"), "cpu");
  if (mem.empty() || cpu.empty()) GTEST_SKIP() << "needs the v1 memory and cpu controllers";
  Output o = vessel({"update", "--memory", "50M", "--cpu-share", "512", "c1"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(slurp(mem + "/memory.limit_in_bytes"), "52428800\n");
  EXPECT_EQ(slurp(cpu + "/cpu.shares"), "512\n");
  ASSERT_EQ(vessel({"update", "--memory", "64MiB", "--memory-swap", "1g", "c1"}).status, 0);
  EXPECT_EQ(slurp(mem + "/memory.limit_in_bytes"), "67108864\n");
  ASSERT_EQ(vessel({"update", "--memory", "60mb", "c1"}).status, 0);
  EXPECT_EQ(slurp(mem + "/memory.limit_in_bytes"), "62914560\n");
  Output bad = vessel({"update", "--memory", "50X", "c1"});
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("50X"), std::string::npos) << bad.err;
  EXPECT_EQ(slurp(mem + "/memory.limit_in_bytes"), "62914560\n") << "a refused update changes nothing";
}

TEST_F(Parity, RunKeepLeavesTheStoppedContainer) {
  set_script("exit 3");
  write_config();
  Output o = vessel({"run", "--keep", "--bundle", bundle_, "k1"});
  EXPECT_EQ(o.status, 3) << o.err;
  EXPECT_EQ(status_of("k1"), "stopped");
  EXPECT_EQ(vessel({"delete", "k1"}).status, 0);
  EXPECT_EQ(status_of("k1"), "");
}

TEST_F(Parity, ExecInSubCgroup) {
  run_sleeper();
  std::string mem = v1_cgroup_dir(init_pid("c1"), "memory");
  if (mem.empty()) GTEST_SKIP() << "needs the v1 memory controller (the v2 form is --cgroup PATH)";
  ASSERT_EQ(::mkdir((mem + "/sub").c_str(), 0755), 0) << mem;
  Output o = vessel({"exec", "--cgroup", "memory:sub", "c1", "cat", "/proc/self/cgroup"});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_TRUE(std::regex_search(o.out, std::regex(":memory:.*/sub\n"))) << o.out;
  EXPECT_FALSE(std::regex_search(o.out, std::regex(":pids:.*/sub\n"))) << "only the memory hierarchy: " << o.out;
  EXPECT_EQ(vessel({"exec", "--cgroup", "memory:nosuch", "c1", "true"}).status, 255);
  EXPECT_EQ(vessel({"exec", "--cgroup", "memory:../..", "c1", "true"}).status, 255);
  EXPECT_EQ(vessel({"exec", "--cgroup", "bogus:sub", "c1", "true"}).status, 255);
  // The exec'd process is gone: the sub-cgroup can go (delete would remove it too).
  for (int i = 0; i < 100 && ::rmdir((mem + "/sub").c_str()) != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

// --- Lifecycle and processes ---------------------------------------------------------

TEST_F(Parity, StartReturnsWhenTheProcessExecs) {
  // Many fds allowed and close_range denied: the init must not walk every fd number
  // under the filter after `start` (or before exec) while a signal could be lost.
  // As many as we may have (raising the hard limit needs CAP_SYS_RESOURCE).
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max < 20000) GTEST_SKIP() << "needs a hard RLIMIT_NOFILE of 20000 or more (ulimit -Hn)";
  uint64_t nofile = std::min<uint64_t>(rl.rlim_max, 1048576);
  config_["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"hard", nofile}, {"soft", nofile}}};
  config_["linux"]["seccomp"] = Json::parse(
      R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["close_range"],"action":"SCMP_ACT_ERRNO","errnoRet":38}]})");
  set_script("trap 'echo got-usr1; exit 0' USR1; echo ready; while :; do sleep 0.05; done");
  write_config();
  std::string out = dir_ + "/out";
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  // create's stdio is the container's: a file we read back.
  std::string cmd = runtime_binary() + " --root " + root_ + " create --bundle " + bundle_ + " s1 >" + out + " 2>&1";
  ASSERT_EQ(run_command({"sh", "-c", cmd}).status, 0) << slurp(out);
  ::close(fd);
  int pid = init_pid("s1");
  ASSERT_GT(pid, 0);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(vessel({"start", "s1"}).status, 0);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  // The process has exec'd (runc: is about to): its executable is busybox, not the runtime.
  bool execd = false;
  for (int i = 0; i < 20 && !execd; ++i) {
    char exe[4096] = {};
    ssize_t n = ::readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), exe, sizeof exe - 1);
    execd = n > 0 && std::string(exe, static_cast<size_t>(n)).ends_with("/bin/busybox");
    if (!execd) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(execd) << "start returned " << took << " ms in, before the process exec'd";
  // Once the shell said it is ready its trap is set: the signal is handled, not lost.
  for (int i = 0; i < 500 && slurp(out).find("ready") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(::kill(pid, SIGUSR1), 0);
  ASSERT_TRUE(wait_status("s1", "stopped")) << slurp(out);
  EXPECT_NE(slurp(out).find("got-usr1"), std::string::npos) << slurp(out);
  std::printf("start with RLIMIT_NOFILE %llu and close_range denied: %lld ms\n", static_cast<unsigned long long>(nofile),
              static_cast<long long>(took));
}

TEST_F(Parity, ExecCapIsNotInheritableAndNoNewPrivsFollowsTheConfig) {
  config_["process"]["noNewPrivileges"] = false;
  run_sleeper();
  Output o = vessel({"exec", "--cap", "CAP_SYS_ADMIN", "c1", "grep", "-E", "Cap|NoNewPrivs", "/proc/self/status"});
  ASSERT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find("CapInh:\t0000000000000000"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapAmb:\t0000000000000000"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapBnd:\t0000000020200420"), std::string::npos) << o.out;  // + CAP_SYS_ADMIN (21)
  EXPECT_NE(o.out.find("CapEff:\t0000000020200420"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("NoNewPrivs:\t0"), std::string::npos) << o.out;
  Output nnp = vessel({"exec", "--no-new-privs", "c1", "grep", "NoNewPrivs", "/proc/self/status"});
  EXPECT_EQ(nnp.out, "NoNewPrivs:\t1\n") << nnp.err;
}

TEST_F(Parity, UnknownCapabilityWarnsAndAmbientOutsideInheritableIsIgnored) {
  // `spec`'s config: ambient = bounding, no inheritable; plus a capability nobody knows.
  for (const char* set : {"bounding", "effective", "permitted", "ambient"})
    config_["process"]["capabilities"][set].push_back("CAP_TELEPORT");
  Output o = run_script("grep -E 'CapAmb|CapEff' /proc/self/status");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.err.find("CAP_TELEPORT"), std::string::npos) << "a warning names it: " << o.err;
  EXPECT_NE(o.out.find("CapAmb:\t0000000000000000"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("CapEff:\t0000000020000420"), std::string::npos) << o.out;
}

TEST_F(Parity, DeleteOfCreatedContainer) {
  set_script("exec sleep 1000");
  write_config();
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "d1"}).status, 0);
  int pid = init_pid("d1");
  ASSERT_GT(pid, 0);
  Output o = vessel({"delete", "d1"});
  EXPECT_EQ(o.status, 0) << o.err;
  for (int i = 0; i < 200 && process_running(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(process_running(pid));
  EXPECT_EQ(status_of("d1"), "");
}

TEST_F(Parity, HomeAndCwdOfTheProcess) {
  std::ofstream(bundle_ + "/rootfs/etc/passwd") << "root:x:0:0:root:/root:/bin/sh\nu1:x:1000:1000::/home/u1:/bin/sh\n";
  config_["process"]["cwd"] = "/work/made/here";
  config_["root"]["readonly"] = true;
  Output o = run_script("echo HOME=$HOME; pwd");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "HOME=/root\n/work/made/here\n");
  config_["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  config_["process"]["cwd"] = "/";
  EXPECT_EQ(run_script("echo HOME=$HOME", "c2").out, "HOME=/home/u1\n");
  config_["process"]["user"] = {{"uid", 2000}, {"gid", 2000}};
  EXPECT_EQ(run_script("echo HOME=$HOME", "c3").out, "HOME=/\n");
  config_["process"]["env"].push_back("HOME=/given");
  EXPECT_EQ(run_script("echo HOME=$HOME", "c4").out, "HOME=/given\n");
  // exec: the same rule.
  config_["process"]["user"] = {{"uid", 0}, {"gid", 0}};
  config_["process"]["env"].erase(config_["process"]["env"].size() - 1);
  run_sleeper("c5");
  EXPECT_EQ(vessel({"exec", "--user", "1000", "c5", "sh", "-c", "echo $HOME"}).out, "/home/u1\n");
}

TEST_F(Parity, SocketActivationFdsReachTheInit) {
  // systemd's protocol: LISTEN_FDS fds from 3 for the runtime's pid; runc passes them on
  // with LISTEN_FDS=N LISTEN_PID=1, before any --preserve-fds.
  std::ofstream(dir_ + "/listen") << "from-listen-fd";
  std::ofstream(dir_ + "/extra") << "from-preserved-fd";
  set_script("echo $LISTEN_FDS $LISTEN_PID; cat <&3; echo; cat <&4");
  write_config();
  std::string cmd = "exec 3<" + dir_ + "/listen 4<" + dir_ + "/extra; LISTEN_FDS=1 LISTEN_PID=$$ exec " + runtime_binary() +
                    " --root " + root_ + " run --preserve-fds 1 --bundle " + bundle_ + " l1";
  Output o = run_command({"sh", "-c", cmd});
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_EQ(o.out, "1 1\nfrom-listen-fd\nfrom-preserved-fd");
}

TEST_F(Parity, ConsoleBelongsToTheProcessUser) {
  std::string sock = dir_ + "/console.sock";
  int srv = listen_unix(sock);
  ASSERT_GE(srv, 0);
  config_["process"]["terminal"] = true;
  config_["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  set_script("stat -c %u:%g $(readlink /proc/self/fd/0); sleep 1");
  write_config();
  pid_t runner = spawn({runtime_binary(), "--root", root_, "run", "-d", "--console-socket", sock, "--bundle", bundle_, "t1"});
  int master = accept_fd(srv);
  ::close(srv);
  ASSERT_GE(master, 0);
  ASSERT_EQ(wait_exit(runner, 30000), 0);
  std::string out;
  char buf[256];
  for (int i = 0; i < 200 && out.find('\n') == std::string::npos; ++i) {
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    else std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::close(master);
  EXPECT_EQ(out.substr(0, out.find_first_of("\r\n")), "1000:5") << out;
}

TEST_F(Parity, FrozenCgroupIsRefused) {
  if (::access("/sys/fs/cgroup/freezer", F_OK) != 0) GTEST_SKIP() << "needs the v1 freezer";
  std::string name = "/parity1-frozen-" + std::to_string(::getpid());
  std::string freezer = "/sys/fs/cgroup/freezer" + name;
  ASSERT_EQ(::mkdir(freezer.c_str(), 0755), 0);
  std::ofstream(freezer + "/freezer.state") << "FROZEN";
  config_["linux"]["cgroupsPath"] = name;
  set_script("true");
  write_config();
  Output o = vessel({"run", "--bundle", bundle_, "f1"}, "", 30);
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("frozen"), std::string::npos) << o.err;
  std::ofstream(freezer + "/freezer.state") << "THAWED";
  vessel({"delete", "-f", "f1"});
  for (const auto& m : cgroup_mounts()) ::rmdir((m + name).c_str());
  EXPECT_NE(::access(freezer.c_str(), F_OK), 0) << "left behind";
}

// A pre-existing cgroup with processes in it: Ownership.NonEmptyNamedCgroupIsRefusedAndLeftAlone.

TEST_F(Parity, UnifiedKeysOnAHybridHostAreInvalid) {
  if (::access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) != 0) GTEST_SKIP() << "not a hybrid host";
  config_["linux"]["resources"]["memory"] = {{"limit", 100000000}};
  config_["linux"]["resources"]["unified"] = {{"memory.min", "0"}};
  set_script("true");
  write_config();
  Output o = vessel({"run", "--bundle", bundle_, "u1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("invalid configuration"), std::string::npos) << o.err;
  EXPECT_EQ(status_of("u1"), "");
}

TEST_F(Parity, SeccompAgentConnectFailureSaysSo) {
  config_["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                                 {"listenerPath", dir_ + "/no-agent.sock"},
                                 {"syscalls", {{{"names", {"mkdir"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
  set_script("true");
  write_config();
  Output o = vessel({"run", "--bundle", bundle_, "a1"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("seccomp agent"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("no-agent.sock"), std::string::npos) << o.err;
  EXPECT_EQ(status_of("a1"), "");
}

TEST_F(Parity, NoMountNamespaceSharesTheRuntimes) {
  // runc makes the mounts too (runtime-tools' linux_ns_itype passes), but leaves them on the host.
  SKIP_FOR_PEER("runc leaves the config's mounts on the host after delete");
  auto& ns = config_["linux"]["namespaces"];
  for (size_t i = 0; i < ns.size(); ++i)
    if (ns[i]["type"] == "mount") ns.erase(i);
  char host_ns[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/mnt", host_ns, sizeof host_ns - 1), 0);
  auto before = mount_points();
  auto mounted_under_rootfs = [&] {
    int n = 0;
    for (const auto& m : mount_points())
      if (m.find(bundle_ + "/rootfs") != std::string::npos) ++n;
    return n;
  };
  // The config's mounts (/proc, /dev, masked and read-only paths) are made in our namespace.
  Output o = run_script("readlink /proc/self/ns/mnt; test -c /dev/null && echo null; "
                        "grep -c ' /proc ' /proc/self/mountinfo; echo done");
  EXPECT_EQ(o.status, 0) << o.err;
  EXPECT_NE(o.out.find(host_ns), std::string::npos) << o.out << " (ours: " << host_ns << ")";
  EXPECT_NE(o.out.find("null\n"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("done"), std::string::npos) << o.out;
  EXPECT_EQ(mount_points(), before) << "run leaves no mount on the host";
  // A created container's mounts are on the host until delete takes them all back.
  std::ofstream(bundle_ + "/rootfs/etc/marker") << "in the rootfs\n";
  set_script("exec sleep 1000");
  write_config();
  Output c = vessel({"create", "--bundle", bundle_, "n1"});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_GE(mounted_under_rootfs(), 3) << "the rootfs bind, /proc and /dev";
  // exec enters the container's root too (a chroot: there is no mount namespace to join).
  Output e = vessel({"exec", "n1", "cat", "/etc/marker"});
  EXPECT_EQ(e.status, 0) << e.err;
  EXPECT_EQ(e.out, "in the rootfs\n");
  EXPECT_EQ(vessel({"delete", "--force", "n1"}).status, 0);
  EXPECT_EQ(mount_points(), before) << "delete leaves no mount on the host";
  // With nothing to mount, the rootfs is only a chroot: nothing is mounted at all.
  config_["mounts"] = Json::array();
  config_["linux"].erase("maskedPaths");
  config_["linux"].erase("readonlyPaths");
  config_["root"]["readonly"] = false;
  set_script("exec sleep 1000");
  write_config();
  ASSERT_EQ(vessel({"create", "--bundle", bundle_, "n2"}).status, 0);
  EXPECT_EQ(mounted_under_rootfs(), 0);
  EXPECT_EQ(vessel({"delete", "--force", "n2"}).status, 0);
}

TEST_F(Parity, NoMountNamespaceWithAUserNamespaceIsRefusedNamingTheMounts) {
  SKIP_FOR_PEER("vessel's message");
  auto& ns = config_["linux"]["namespaces"];
  for (size_t i = 0; i < ns.size(); ++i)
    if (ns[i]["type"] == "mount") ns.erase(i);
  ns.push_back({{"type", "user"}});
  config_["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  config_["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  auto before = mount_points();
  Output o = run_script("true", "u2");
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("without a mount namespace"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("mounts ("), std::string::npos) << o.err;
  EXPECT_EQ(mount_points(), before);
  EXPECT_EQ(status_of("u2"), "");
}

}  // namespace
}  // namespace vessel::testing
