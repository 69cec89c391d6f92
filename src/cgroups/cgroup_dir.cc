#include "cgroups/cgroup_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"

namespace vessel::cgroups {

std::string CgroupDir::file(std::string_view name) const { return cat(path_, "/", name); }

namespace {

// Writes `value` to the control file `path` in one write(2), as the kernel wants.
Status write_control(const std::string& path, std::string_view value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(cat("open ", path));
  UniqueFd guard(fd);
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::from_errno(cat("write \"", value, "\" to ", path));
  if (static_cast<size_t>(n) != value.size())
    return Error(EIO, cat("write \"", value, "\" to ", path, ": short write"));
  return ok();
}

// Files holding one entry per device, rule or interface: their content read back
// is not a value that can be written back.
bool is_keyed(std::string_view path) {
  std::string_view name = path.substr(path.rfind('/') + 1);
  for (std::string_view keyed : {"io.max", "io.weight", "io.bfq.weight", "net_prio.ifpriomap", "devices.allow",
                                 "devices.deny", "rdma.max"})
    if (name == keyed) return true;
  return name.size() > 7 && name.substr(name.size() - 7) == "_device";
}

}  // namespace

void WriteJournal::remember(const std::string& path) {
  if (check_only_ || is_keyed(path)) return;
  for (const auto& [p, _] : saved_)
    if (p == path) return;
  auto content = read_file(path);
  if (!content) return;  // the write will fail on its own, with its own error
  std::string value = std::move(*content);
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  if (value.empty() || value.find('\n') != std::string::npos) return;  // nothing a write could restore
  saved_.emplace_back(path, std::move(value));
}

Status WriteJournal::rollback() {
  Status result;
  for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
    log::debug("cgroups", cat("roll back ", it->first, " = ", it->second));
    auto st = write_control(it->first, it->second);
    if (!st) {
      log::warn("cgroups", cat("could not restore ", it->first, ": ", st.error().message()));
      if (result) result = std::move(st);
    }
  }
  saved_.clear();
  return result;
}

Status CgroupDir::write(std::string_view name, std::string_view value) const {
  std::string path = file(name);
  if (journal_ && journal_->check_only()) {
    if (::access(path.c_str(), F_OK) < 0) return Error::from_errno(cat("open ", path));
    return ok();
  }
  log::debug("cgroups", cat("write ", path, " = ", value));
  if (log_) log_->push_back(cat(name, "=", value));
  if (journal_) journal_->remember(path);
  return write_control(path, value);
}

Result<std::string> CgroupDir::read(std::string_view name) const {
  auto s = TRY(read_file(file(name)));
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

Result<int64_t> CgroupDir::read_int(std::string_view name) const {
  auto s = TRY(read(name));
  if (s == "max") return int64_t{-1};
  auto v = parse_i64(s);
  if (!v) return Error::invalid(cat(file(name), ": expected an integer, read \"", s, "\""));
  return *v;
}

bool CgroupDir::has(std::string_view name) const { return ::access(file(name).c_str(), F_OK) == 0; }

}  // namespace vessel::cgroups
