#include "cgroups/cgroup_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"

namespace vessel::cgroups {

std::string CgroupDir::file(std::string_view name) const { return cat(path_, "/", name); }

Status CgroupDir::write(std::string_view name, std::string_view value) const {
  std::string path = file(name);
  log::debug("cgroups", cat("write ", path, " = ", value));
  if (log_) log_->push_back(cat(name, "=", value));
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
