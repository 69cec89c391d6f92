// The eBPF device program on a real cgroup2 cgroup (root only): the kernel's verifier
// accepts it, it denies what the rules deny, and installing again replaces it.
// Runs on pure v2 hosts and on hybrid ones (the cgroup2 mount at /sys/fs/cgroup/unified).
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <sstream>

#include "cgroups/controllers.h"
#include "cgroups/device_filter.h"
#include "common/fs.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

// The host's cgroup2 mount point, or "".
std::string cgroup2_mount() {
  auto text = read_file("/proc/self/mountinfo");
  if (!text) return "";
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    auto dash = line.find(" - cgroup2 ");
    if (dash == std::string::npos) continue;
    std::istringstream f(line);
    std::string skip, mountpoint;
    f >> skip >> skip >> skip >> skip >> mountpoint;
    return mountpoint;
  }
  return "";
}

// Ids of the device programs attached to the directory.
std::vector<uint32_t> attached(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  uint32_t ids[64] = {};
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.query.target_fd = fd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = reinterpret_cast<uintptr_t>(ids);
  attr.query.prog_cnt = 64;
  long r = ::syscall(SYS_bpf, BPF_PROG_QUERY, &attr, sizeof(attr));
  ::close(fd);
  EXPECT_EQ(r, 0) << std::strerror(errno);
  return std::vector<uint32_t>(ids, ids + (r == 0 ? attr.query.prog_cnt : 0));
}

std::vector<oci::LinuxDeviceCgroup> null_only() {
  oci::LinuxDeviceCgroup deny_all, null;
  deny_all.allow = false;
  null.allow = true;
  null.type = "c";
  null.major = 1;
  null.minor = 3;
  return {deny_all, null};
}

class DeviceProgram : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    std::string mp = cgroup2_mount();
    if (mp.empty()) GTEST_SKIP() << "no cgroup2 mount";
    dir_ = cat(mp, "/vessel-devtest-", ::getpid());
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0) << dir_ << ": " << std::strerror(errno);
  }
  void TearDown() override {
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  // errno of opening `path` read-only from a child in the cgroup (0: it opened).
  int open_errno_inside(const char* path) {
    int pipefd[2];
    EXPECT_EQ(::pipe(pipefd), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pipefd[0]);
      int err = 0;
      if (!write_file(dir_ + "/cgroup.procs", std::to_string(::getpid()))) {
        err = 1000;
      } else {
        int fd = ::open(path, O_RDONLY);
        err = fd < 0 ? errno : 0;
      }
      (void)!::write(pipefd[1], &err, sizeof(err));
      ::_exit(0);
    }
    ::close(pipefd[1]);
    int err = -1;
    EXPECT_EQ(::read(pipefd[0], &err, sizeof(err)), static_cast<ssize_t>(sizeof(err)));
    ::close(pipefd[0]);
    ::waitpid(pid, nullptr, 0);
    return err;
  }
  std::string dir_;
};

TEST_F(DeviceProgram, EnforcesRulesAndReplacesTheOldProgram) {
  ASSERT_TRUE(apply_devices_v2(CgroupDir(dir_), null_only(), kernel_device_installer()));
  auto first = attached(dir_);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(open_errno_inside("/dev/null"), 0);
  EXPECT_EQ(open_errno_inside("/dev/zero"), EPERM);

  // Again, now allowing everything: one program, a new one.
  oci::LinuxDeviceCgroup all;
  all.allow = true;
  ASSERT_TRUE(apply_devices_v2(CgroupDir(dir_), {all}, kernel_device_installer()));
  auto second = attached(dir_);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(second[0], first[0]);
  EXPECT_EQ(open_errno_inside("/dev/zero"), 0);
}

TEST_F(DeviceProgram, ErrorsNameTheCgroup) {
  auto st = kernel_device_installer().install(dir_ + "/missing", *device_filter_program(null_only()));
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("/missing"), std::string::npos) << st.error().message();
}

}  // namespace
}  // namespace vessel::cgroups
