// The cgroup manager against the host's real cgroups (root only, no container runtime).
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>

#include "cgroups/manager.h"
#include "common/fs.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

// A forked child that waits on a pipe, so the test can put it in the cgroup before it runs `body`.
class Child {
 public:
  explicit Child(std::function<int()> body) {
    int go[2];
    if (::pipe(go) < 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(go[1]);
      char c;
      if (::read(go[0], &c, 1) != 1) ::_exit(100);
      ::_exit(body());
    }
    ::close(go[0]);
    go_ = go[1];
  }
  ~Child() {
    if (go_ >= 0) ::close(go_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      // Bounded: a child a test left frozen dies only once TearDown's kill_all thaws it.
      for (int i = 0; i < 500 && ::waitpid(pid_, nullptr, WNOHANG) == 0; ++i) ::usleep(10000);
    }
  }
  pid_t pid() const { return pid_; }
  void start() {
    char c = 'g';
    EXPECT_EQ(::write(go_, &c, 1), 1);
  }
  // Waits for the child and returns its wait status.
  // Waits (at most 20 s) for the child and returns its wait status.
  int wait() {
    int status = 0;
    for (int i = 0; i < 2000; ++i) {
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        return status;
      }
      ::usleep(10000);
    }
    ADD_FAILURE() << "child " << pid_ << " did not exit";
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int go_ = -1;
};

class CgroupsIntegration : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    id_ = cat("vessel-itest-", ::getpid(), "-", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    Options o;
    o.container_id = id_;
    o.cgroups_path = cat("/vessel-itest/", id_);
    auto m = Manager::create(o);
    ASSERT_TRUE(m) << m.error().message();
    m_ = std::move(*m);
  }
  void TearDown() override {
    if (!m_) return;
    (void)m_->kill_all(SIGKILL);
    auto st = m_->destroy();
    EXPECT_TRUE(st) << st.error().message();
    for (const auto& mnt : m_->mounts()) EXPECT_FALSE(path_exists(mnt.mountpoint + mnt.path)) << mnt.mountpoint;
  }
  std::string read_control(const std::string& controller, const std::string& file) {
    auto s = read_file(cat(m_->dir_for(controller), "/", file));
    return s ? std::string(trim(*s)) : "<" + s.error().message() + ">";
  }
  Status apply_json(const char* text) {
    auto r = oci::parse_resources(nlohmann::json::parse(text));
    if (!r) return std::move(r).error();
    return m_->apply(*r);
  }
  bool v2_only() const { return m_->layout() == Layout::kV2; }

  std::string id_;
  std::unique_ptr<Manager> m_;
};

TEST_F(CgroupsIntegration, ProcessJoinsEveryHierarchyAndLimitsReadBack) {
  Child child([] {
    ::execlp("sleep", "sleep", "100", nullptr);
    return 127;
  });
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(m_->add_process(child.pid()));
  child.start();

  auto cg = read_file(cat("/proc/", child.pid(), "/cgroup"));
  ASSERT_TRUE(cg);
  std::string want = cat("/vessel-itest/", id_);
  size_t lines = 0;
  for (const auto& line : split(*cg, '\n')) {
    if (line.empty()) continue;
    ++lines;
    EXPECT_TRUE(line.size() > want.size() && line.compare(line.size() - want.size(), want.size(), want) == 0)
        << line;
  }
  EXPECT_EQ(lines, m_->mounts().size());

  auto st = apply_json(R"({"memory": {"limit": 67108864}, "pids": {"limit": 32}, "cpu": {"shares": 512}})");
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(read_control("memory", v2_only() ? "memory.max" : "memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(read_control("pids", "pids.max"), "32");
  EXPECT_EQ(read_control("cpu", v2_only() ? "cpu.weight" : "cpu.shares"), v2_only() ? "20" : "512");

  auto pids = m_->pids();
  ASSERT_TRUE(pids) << pids.error().message();
  EXPECT_EQ(*pids, std::vector<pid_t>{child.pid()});

  ASSERT_TRUE(m_->freeze());
  EXPECT_TRUE(*m_->frozen());
  if (!v2_only()) {
    EXPECT_EQ(read_control("freezer", "freezer.state"), "FROZEN");
  }
  ASSERT_TRUE(m_->thaw());
  EXPECT_FALSE(*m_->frozen());

  ASSERT_TRUE(m_->kill_all(SIGKILL));
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  auto after = m_->pids();
  ASSERT_TRUE(after);
  EXPECT_TRUE(after->empty());
}

TEST_F(CgroupsIntegration, KillAllWhilePausedStillKills) {
  Child child([] {
    ::execlp("sleep", "sleep", "100", nullptr);
    return 127;
  });
  ASSERT_TRUE(m_->add_process(child.pid()));
  child.start();
  ASSERT_TRUE(m_->freeze());
  ASSERT_TRUE(m_->kill_all(SIGKILL));
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
}

TEST_F(CgroupsIntegration, PidsLimitStopsAForkBomb) {
  ASSERT_TRUE(apply_json(R"({"pids": {"limit": 16}})"));
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  Child child([&] {
    ::close(report[0]);
    int forked = 0;
    for (int i = 0; i < 200; ++i) {
      pid_t p = ::fork();
      if (p == 0) {
        ::pause();
        ::_exit(0);
      }
      if (p < 0) break;
      ++forked;
    }
    if (::write(report[1], &forked, sizeof forked) != sizeof forked) return 1;
    ::pause();
    return 0;
  });
  ::close(report[1]);
  ASSERT_TRUE(m_->add_process(child.pid()));
  child.start();
  int forked = -1;
  ASSERT_EQ(::read(report[0], &forked, sizeof forked), static_cast<ssize_t>(sizeof forked));
  ::close(report[0]);
  EXPECT_EQ(forked, 15) << "16 tasks in all, the bomb itself included";
  ASSERT_TRUE(m_->kill_all(SIGKILL));
  child.wait();
}

TEST_F(CgroupsIntegration, MemoryHogIsOomKilledAtTheLimit) {
  // Memory and memory+swap equal: no swap to escape to.
  ASSERT_TRUE(apply_json(R"({"memory": {"limit": 33554432, "swap": 33554432}})"));
  Child child([] {
    const size_t chunk = 1 << 20;
    for (int i = 0; i < 512; ++i) {  // up to 512 MiB, touched page by page
      void* p = ::mmap(nullptr, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) return 2;
      std::memset(p, 0x5a, chunk);
    }
    return 0;  // never reached under the limit
  });
  ASSERT_TRUE(m_->add_process(child.pid()));
  child.start();
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
}

TEST_F(CgroupsIntegration, SavedStateReopensTheSameCgroups) {
  auto loaded = Manager::load(m_->save());
  ASSERT_TRUE(loaded) << loaded.error().message();
  Child child([] {
    ::execlp("sleep", "sleep", "100", nullptr);
    return 127;
  });
  ASSERT_TRUE((*loaded)->add_process(child.pid()));
  child.start();
  auto pids = m_->pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, std::vector<pid_t>{child.pid()});
  ASSERT_TRUE((*loaded)->kill_all(SIGTERM));
  int status = child.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << status;
}

}  // namespace
}  // namespace vessel::cgroups
