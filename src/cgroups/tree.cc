#include "cgroups/tree.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

// The names of the sub-directories (child cgroups) of `dir`.
Result<std::vector<std::string>> subdirs(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Error::from_errno(cat("opendir ", dir));
  std::vector<std::string> out;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == ".." || e->d_type != DT_DIR) continue;
    out.emplace_back(n);
  }
  ::closedir(d);
  return out;
}

Status collect(const std::string& dir, std::vector<pid_t>& out) {
  auto text = read_file(cat(dir, "/cgroup.procs"));
  if (!text) {
    if (text.error().code() == ENOENT && !path_exists(dir)) return ok();  // removed meanwhile
    return std::move(text).error();
  }
  for (const auto& line : split(*text, '\n')) {
    if (auto pid = parse_i64(trim(line))) out.push_back(static_cast<pid_t>(*pid));
  }
  auto children = subdirs(dir);
  if (!children) return ok();  // removed meanwhile
  for (const auto& c : *children) TRY(collect(cat(dir, "/", c), out));
  return ok();
}

}  // namespace

Result<std::vector<pid_t>> list_pids_recursive(const std::string& dir) {
  std::vector<pid_t> out;
  TRY(collect(dir, out));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status remove_cgroup_tree(const std::string& dir, int timeout_ms) {
  auto children = subdirs(dir);
  if (!children) {
    if (children.error().code() == ENOENT) return ok();
    return std::move(children).error();
  }
  for (const auto& c : *children) TRY(remove_cgroup_tree(cat(dir, "/", c), timeout_ms));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto delay = std::chrono::milliseconds(1);
  while (::rmdir(dir.c_str()) < 0) {
    if (errno == ENOENT) return ok();
    if (errno != EBUSY || std::chrono::steady_clock::now() >= deadline) return Error::from_errno(cat("rmdir ", dir));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(100));
  }
  return ok();
}

}  // namespace vessel::cgroups
