// Cgroup limits and stats of real containers through the vessel binary (root):
// OOM kill and its event, pids limit against a fork bomb, CFS quota, pause/resume,
// update of a live limit, events --stats. Works on v1, hybrid and v2 hosts.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/container/fixture.h"

namespace vessel::testing {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

// Polls `cond` every 20 ms for up to `limit`.
template <class F>
bool wait_for(F cond, std::chrono::milliseconds limit = 5000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return cond();
}

// A background `vessel events` whose stdout goes to a file.
class EventsProcess {
 public:
  EventsProcess(const std::vector<std::string>& args, std::string out) : out_(std::move(out)) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ::dup2(fd, 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  ~EventsProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string output() const { return slurp(out_); }
  // Exit status once it has exited within `limit`, else -1.
  int wait(std::chrono::milliseconds limit) {
    int status = 0;
    bool done = wait_for([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, limit);
    if (!done) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  std::string out_;
};

class Cgroups : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    for (const char* a : {"tail", "mv"}) ::symlink("busybox", (bundle_ + "/rootfs/bin/" + a).c_str());
    config_["root"]["readonly"] = false;  // the scripts leave their results in /tmp
  }

  // Starts `script` detached as c1.
  void start(const std::string& script) {
    set_script(script);
    write_config();
    Output o = vessel({"run", "-d", "--bundle", bundle_, "c1"});
    ASSERT_EQ(o.status, 0) << o.err;
  }
  int init_pid() { return Json::parse(vessel({"state", "c1"}).out)["pid"].get<int>(); }

  // The container's directory for `controller` on this host: the v1 hierarchy
  // named after it, else the v2 cgroup.
  std::string cgroup_dir(const std::string& controller) {
    std::istringstream lines(slurp("/proc/" + std::to_string(init_pid()) + "/cgroup"));
    std::string line, v2;
    while (std::getline(lines, line)) {
      auto a = line.find(':'), b = line.find(':', a + 1);
      std::string ctrls = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
      if (ctrls.empty()) v2 = path;
      std::istringstream cs(ctrls);
      std::string c;
      while (std::getline(cs, c, ','))
        if (c == controller && ::access(("/sys/fs/cgroup/" + controller).c_str(), F_OK) == 0)
          return "/sys/fs/cgroup/" + controller + path;
    }
    return "/sys/fs/cgroup" + v2;
  }

  Json stats() {
    Output o = vessel({"events", "--stats", "c1"});
    EXPECT_EQ(o.status, 0) << o.err;
    auto j = Json::parse(o.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << o.out;
    EXPECT_EQ(j.value("type", ""), "stats");
    EXPECT_EQ(j.value("id", ""), "c1");
    return j.is_discarded() ? Json::object() : j["data"];
  }

  std::string rootfs_file(const std::string& rel) { return bundle_ + "/rootfs/" + rel; }
};

uint64_t num(const Json& j, std::initializer_list<const char*> path) {
  const Json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return 0;
    p = &(*p)[k];
  }
  return p->is_number() ? p->get<uint64_t>() : 0;
}

TEST_F(Cgroups, MemoryHogIsOomKilledAndEventsReportsIt) {
  config_["linux"]["resources"]["memory"] = {{"limit", 32 << 20}, {"swap", 32 << 20}};
  // The hog runs as a child so the container lives on after the kill.
  start("while [ ! -e /tmp/go ]; do sleep 0.05; done; tail /dev/zero; echo $? > /tmp/rc; exec sleep 100");
  EventsProcess ev({VESSEL_BINARY, "--root", root_, "events", "--interval", "10s", "c1"}, dir_ + "/events.out");
  std::this_thread::sleep_for(300ms);  // events takes its OOM baseline
  std::ofstream(rootfs_file("tmp/go")).put('\n');
  ASSERT_TRUE(wait_for([&] { return !slurp(rootfs_file("tmp/rc")).empty(); }, 10000ms));
  EXPECT_EQ(slurp(rootfs_file("tmp/rc")), "137\n");
  ASSERT_TRUE(wait_for([&] { return ev.output().find(R"({"type":"oom","id":"c1"})") != std::string::npos; }, 3000ms))
      << ev.output();
  // The state is unaffected by the kill of a child.
  EXPECT_EQ(Json::parse(vessel({"state", "c1"}).out)["status"], "running");
  EXPECT_GE(num(stats(), {"memory", "usage", "failcnt"}) + num(stats(), {"memory", "usage", "max"}), 1u);
  // events ends (exit 0) once the container stops.
  ASSERT_EQ(vessel({"kill", "c1", "KILL"}).status, 0);
  EXPECT_EQ(ev.wait(3000ms), 0);
}

TEST_F(Cgroups, EventsReportsTheOomKillThatEndsTheContainer) {
  config_["linux"]["resources"]["memory"] = {{"limit", 32 << 20}, {"swap", 32 << 20}};
  start("while [ ! -e /tmp/go ]; do sleep 0.05; done; exec tail /dev/zero");
  EventsProcess ev({VESSEL_BINARY, "--root", root_, "events", "c1"}, dir_ + "/events.out");
  std::this_thread::sleep_for(300ms);
  std::ofstream(rootfs_file("tmp/go")).put('\n');
  EXPECT_EQ(ev.wait(5000ms), 0);
  EXPECT_EQ(ev.output(), "{\"type\":\"oom\",\"id\":\"c1\"}\n");
  EXPECT_EQ(Json::parse(vessel({"state", "c1"}).out)["status"], "stopped");
}

TEST_F(Cgroups, ForegroundOomKilledInitExits137) {
  config_["linux"]["resources"]["memory"] = {{"limit", 32 << 20}, {"swap", 32 << 20}};
  Output o = run_script("exec tail /dev/zero");
  EXPECT_EQ(o.status, 137) << o.err;
  EXPECT_TRUE(state_entries().empty());
}

TEST_F(Cgroups, ForkBombStopsAtPidsLimit) {
  config_["linux"]["resources"]["pids"] = {{"limit", 16}};
  // The subshell ends at its first failed fork; the outer shell reports and stays.
  start("( while true; do sleep 100 & done ) 2>/tmp/err; echo done > /tmp/done; exec sleep 100");
  ASSERT_TRUE(wait_for([&] { return !slurp(rootfs_file("tmp/done")).empty(); }, 10000ms));
  EXPECT_NE(slurp(rootfs_file("tmp/err")).find("can't fork"), std::string::npos) << slurp(rootfs_file("tmp/err"));
  Json s = stats();
  EXPECT_EQ(num(s, {"pids", "limit"}), 16u);
  EXPECT_LE(num(s, {"pids", "current"}), 16u);
  EXPECT_GE(num(s, {"pids", "current"}), 12u);  // the bomb got close to the limit
  Output ps = vessel({"ps", "--format", "json", "c1"});
  ASSERT_EQ(ps.status, 0) << ps.err;
  EXPECT_EQ(Json::parse(ps.out).size(), num(s, {"pids", "current"}));
}

TEST_F(Cgroups, CfsQuotaHoldsASpinnerNearTwentyPercent) {
  config_["linux"]["resources"]["cpu"] = {{"quota", 20000}, {"period", 100000}};
  start("while :; do :; done");
  std::this_thread::sleep_for(200ms);
  uint64_t t0 = num(stats(), {"cpu", "usage", "total"});
  auto w0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1000ms);
  Json s = stats();
  uint64_t t1 = num(s, {"cpu", "usage", "total"});
  double wall_ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - w0).count();
  double share = static_cast<double>(t1 - t0) / wall_ns;
  EXPECT_GT(share, 0.10) << "cpu share " << share;
  EXPECT_LT(share, 0.35) << "cpu share " << share;
  EXPECT_GT(num(s, {"cpu", "throttling", "throttledPeriods"}), 0u);
}

TEST_F(Cgroups, PauseFreezesACounterThatResumeLetsGoOn) {
  start("i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; done");
  auto counter = [&] {
    std::string s = slurp(rootfs_file("tmp/n"));
    return s.empty() ? 0L : std::stol(s);
  };
  ASSERT_TRUE(wait_for([&] { return counter() > 5; }));
  ASSERT_EQ(vessel({"pause", "c1"}).status, 0);
  EXPECT_EQ(Json::parse(vessel({"state", "c1"}).out)["status"], "paused");
  long a = counter();
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(counter(), a);
  ASSERT_EQ(vessel({"resume", "c1"}).status, 0);
  EXPECT_TRUE(wait_for([&] { return counter() > a + 5; }, 2000ms)) << counter() << " after " << a;
}

TEST_F(Cgroups, UpdateMemoryChangesTheLiveLimit) {
  config_["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  start("exec sleep 100");
  Output o = vessel({"update", "--memory", std::to_string(48 << 20), "c1"});
  ASSERT_EQ(o.status, 0) << o.err;
  std::string d = cgroup_dir("memory");
  std::string file = ::access((d + "/memory.limit_in_bytes").c_str(), F_OK) == 0 ? "/memory.limit_in_bytes" : "/memory.max";
  EXPECT_EQ(slurp(d + file), std::to_string(48 << 20) + "\n");
  EXPECT_EQ(num(stats(), {"memory", "usage", "limit"}), static_cast<uint64_t>(48 << 20));
}

TEST_F(Cgroups, StatsShowMemoryGrowingAfterAnAllocation) {
  start("while [ ! -e /tmp/go ]; do sleep 0.05; done; "
        "awk 'BEGIN { s = sprintf(\"%20000000s\", \"x\"); print \"ok\" > \"/tmp/alloc\"; close(\"/tmp/alloc\"); "
        "system(\"sleep 100\") }'");
  uint64_t before = num(stats(), {"memory", "usage", "usage"});
  std::ofstream(rootfs_file("tmp/go")).put('\n');
  ASSERT_TRUE(wait_for([&] { return !slurp(rootfs_file("tmp/alloc")).empty(); }));
  uint64_t after = num(stats(), {"memory", "usage", "usage"});
  EXPECT_GT(after, before + (15 << 20)) << before << " -> " << after;
}

TEST_F(Cgroups, EventsPrintsStatsEveryIntervalAndRejectsBadInput) {
  start("exec sleep 100");
  EventsProcess ev({VESSEL_BINARY, "--root", root_, "events", "--interval", "200ms", "c1"}, dir_ + "/events.out");
  ASSERT_TRUE(wait_for([&] {
    std::string out = ev.output();
    return std::count(out.begin(), out.end(), '\n') >= 3;
  }, 3000ms));
  std::istringstream lines(ev.output());
  std::string line;
  while (std::getline(lines, line)) {
    Json j = Json::parse(line);
    EXPECT_EQ(j["type"], "stats");
    EXPECT_GE(num(j, {"data", "pids", "current"}), 1u);
  }
  Output bad = vessel({"events", "--interval", "5x", "c1"});
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("5x"), std::string::npos) << bad.err;
  EXPECT_EQ(vessel({"events", "--stats", "nosuch"}).status, 1);
  ASSERT_EQ(vessel({"kill", "c1", "KILL"}).status, 0);
  EXPECT_EQ(ev.wait(3000ms), 0);
  Output stopped = vessel({"events", "--stats", "c1"});
  EXPECT_EQ(stopped.status, 1);
  EXPECT_NE(stopped.err.find("not running"), std::string::npos) << stopped.err;
}

}  // namespace
}  // namespace vessel::testing
