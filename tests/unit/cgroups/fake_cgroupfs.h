// A fake cgroupfs in a temp dir: control files are plain files the test creates.
#pragma once

#include <stdlib.h>

#include <string>
#include <utility>
#include <vector>

#include "cgroups/device_filter.h"
#include "common/fs.h"

namespace vessel::cgroups::testing {

// Records the device programs the manager would attach, by cgroup directory;
// with `fail` set, refuses like a kernel without CAP_BPF.
class FakeDeviceInstaller final : public DeviceProgramInstaller {
 public:
  Status install(const std::string& dir, const std::vector<bpf_insn>& program) override {
    if (fail) return Error(EPERM, "load eBPF device program: Operation not permitted");
    installed.emplace_back(dir, program);
    return ok();
  }
  std::vector<std::pair<std::string, std::vector<bpf_insn>>> installed;
  bool fail = false;
};

class FakeCgroupFs {
 public:
  FakeCgroupFs() {
    char tmpl[] = "/tmp/vessel-cgroupfs-XXXXXX";
    root_ = ::mkdtemp(tmpl);
  }
  ~FakeCgroupFs() { (void)remove_tree(root_); }

  const std::string& root() const { return root_; }
  std::string path(const std::string& rel) const { return root_ + "/" + rel; }

  // Creates a control file (and its directories) holding `content`.
  void file(const std::string& rel, const std::string& content = "") {
    std::string p = path(rel);
    (void)mkdir_p(p.substr(0, p.rfind('/')));
    (void)write_file(p, content);
  }
  void dir(const std::string& rel) { (void)mkdir_p(path(rel)); }
  std::string read(const std::string& rel) const {
    auto r = read_file(path(rel));
    return r ? *r : std::string("<missing>");
  }
  bool exists(const std::string& rel) const { return path_exists(path(rel)); }

 private:
  std::string root_;
};

// mountinfo of a hybrid host like the build machine: separate cpu and cpuacct
// hierarchies, v2 at /sys/fs/cgroup/unified holding only hugetlb.
inline const char* kHybridMountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

inline const char* kHybridProcCgroup =
    "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
    "4:memory:/process_api/abc\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

// A classic v1 host (systemd < 233, cpu and cpuacct co-mounted).
inline const char* kV1Mountinfo =
    "25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
    "26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup "
    "rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd\n"
    "28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory\n"
    "30 25 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids\n"
    "31 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup "
    "rw,net_cls,net_prio\n";

inline const char* kV2Mountinfo =
    "22 26 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "28 21 0:24 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n";

}  // namespace vessel::cgroups::testing
