#include "vmm/kvm/ksm.h"

#include <fcntl.h>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::vmm {
namespace {

// One decimal counter of a sysfs/procfs file (a few bytes: read bounded).
Result<uint64_t> read_counter(const std::string& path) {
  auto fd = TRY(open_file(path, O_RDONLY | O_CLOEXEC));
  std::string text = TRYC(read_fd_bounded(fd.get(), 64), path);
  auto v = parse_u64(trim(text));
  if (!v) return Error::invalid(cat(path, ": not a number: '", trim(text), "'"));
  return *v;
}

}  // namespace

Result<KsmStats> read_ksm_stats(const std::string& dir) {
  KsmStats s;
  s.run = TRY(read_counter(dir + "/run"));
  s.pages_shared = TRY(read_counter(dir + "/pages_shared"));
  s.pages_sharing = TRY(read_counter(dir + "/pages_sharing"));
  s.pages_unshared = TRY(read_counter(dir + "/pages_unshared"));
  s.full_scans = TRY(read_counter(dir + "/full_scans"));
  return s;
}

std::optional<uint64_t> ksm_merging_pages(pid_t pid) {
  auto v = read_counter(cat("/proc/", pid, "/ksm_merging_pages"));
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace vessel::vmm
