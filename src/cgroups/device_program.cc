// kernel_device_installer(): loads a device program with bpf(2) and swaps it in on a
// cgroup directory. Only raw bpf(2): BPF_PROG_LOAD, BPF_PROG_QUERY, BPF_PROG_ATTACH,
// BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_DETACH.
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "cgroups/device_filter.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/unique_fd.h"

namespace vessel::cgroups {
namespace {

int sys_bpf(int cmd, bpf_attr& attr) {
  int r;
  do {
    r = static_cast<int>(::syscall(SYS_bpf, cmd, &attr, sizeof(attr)));
  } while (r < 0 && errno == EINTR);
  return r;
}

// A bpf_attr with every byte zero: the kernel refuses (EINVAL) an attr with anything
// set beyond the fields of the command, and `= {}` on a union only promises its first member.
bpf_attr zeroed() {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  return attr;
}

uint64_t ptr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// The last non-empty line of the verifier's log: the reason it refused the program.
std::string last_line(const char* log) {
  std::string s(log);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  auto nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

Result<UniqueFd> load(const std::vector<bpf_insn>& program) {
  static const char kLicense[] = "Apache";  // device programs call no GPL-only helper
  bpf_attr attr = zeroed();
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = ptr(program.data());
  attr.insn_cnt = static_cast<uint32_t>(program.size());
  attr.license = ptr(kLicense);
  std::strncpy(attr.prog_name, kDeviceProgramName, sizeof(attr.prog_name) - 1);
  int fd = sys_bpf(BPF_PROG_LOAD, attr);
  if (fd >= 0) return UniqueFd(fd);
  int err = errno;
  if (err != EINVAL && err != EACCES) return Error::from_errno(err, "load eBPF device program");
  // Refused by the verifier: load again with its log for the reason.
  std::vector<char> log(64 * 1024);
  attr.log_level = 1;
  attr.log_buf = ptr(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  fd = sys_bpf(BPF_PROG_LOAD, attr);
  if (fd >= 0) return UniqueFd(fd);
  log.back() = '\0';
  std::string why = last_line(log.data());
  return Error(err, cat("load eBPF device program: ", std::strerror(err), why.empty() ? "" : cat(" (verifier: ", why, ")")));
}

// Ids of the device programs attached to the cgroup itself (not inherited).
Result<std::vector<uint32_t>> query(int cgroup_fd, const std::string& dir) {
  std::vector<uint32_t> ids(16);
  for (;;) {
    bpf_attr attr = zeroed();
    attr.query.target_fd = cgroup_fd;
    attr.query.attach_type = BPF_CGROUP_DEVICE;
    attr.query.prog_ids = ptr(ids.data());
    attr.query.prog_cnt = static_cast<uint32_t>(ids.size());
    if (sys_bpf(BPF_PROG_QUERY, attr) == 0) {
      ids.resize(attr.query.prog_cnt);
      return ids;
    }
    if (errno != ENOSPC || ids.size() >= 4096) return Error::from_errno(cat("query eBPF device programs of ", dir));
    ids.resize(ids.size() * 4);
  }
}

// A descriptor of program `id` when it is one of ours (by name), else none.
Result<UniqueFd> ours(uint32_t id) {
  bpf_attr attr = zeroed();
  attr.prog_id = id;
  int fd = sys_bpf(BPF_PROG_GET_FD_BY_ID, attr);
  if (fd < 0) {
    if (errno == ENOENT) return UniqueFd();  // gone meanwhile
    return Error::from_errno(cat("open eBPF program ", id));
  }
  UniqueFd prog(fd);
  bpf_prog_info info{};
  attr = zeroed();
  attr.info.bpf_fd = static_cast<uint32_t>(fd);
  attr.info.info_len = sizeof(info);
  attr.info.info = ptr(&info);
  if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, attr) < 0) return Error::from_errno(cat("read info of eBPF program ", id));
  if (std::strncmp(info.name, kDeviceProgramName, sizeof(info.name)) != 0) return UniqueFd();
  return prog;
}

class KernelInstaller final : public DeviceProgramInstaller {
 public:
  Status install(const std::string& dir, const std::vector<bpf_insn>& program) override {
    UniqueFd prog = TRY(load(program));
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Error::from_errno(cat("open ", dir));
    UniqueFd cgroup(fd);
    auto old = TRY(query(cgroup.get(), dir));

    bpf_attr attr = zeroed();
    attr.target_fd = static_cast<uint32_t>(cgroup.get());
    attr.attach_bpf_fd = static_cast<uint32_t>(prog.get());
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    if (sys_bpf(BPF_PROG_ATTACH, attr) < 0) return Error::from_errno(cat("attach eBPF device program to ", dir));

    // The new program is in force (with several, a device needs every one's consent):
    // the old ones can go.
    for (uint32_t id : old) {
      UniqueFd old_prog = TRYC(ours(id), cat("replace the device program of ", dir));
      if (!old_prog) continue;
      attr = zeroed();
      attr.target_fd = static_cast<uint32_t>(cgroup.get());
      attr.attach_bpf_fd = static_cast<uint32_t>(old_prog.get());
      attr.attach_type = BPF_CGROUP_DEVICE;
      if (sys_bpf(BPF_PROG_DETACH, attr) < 0 && errno != ENOENT)
        return Error::from_errno(cat("detach old eBPF device program ", id, " from ", dir));
    }
    log::debug("cgroups", cat("device program of ", program.size(), " instructions attached to ", dir,
                              old.empty() ? "" : cat(", ", old.size(), " old one(s) replaced")));
    return ok();
  }
};

}  // namespace

DeviceProgramInstaller& kernel_device_installer() {
  static KernelInstaller installer;
  return installer;
}

}  // namespace vessel::cgroups
