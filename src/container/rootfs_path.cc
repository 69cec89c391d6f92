#include "container/rootfs_path.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <optional>

#include "common/fs.h"
#include "common/strings.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {
constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
}

Result<std::string> resolve_root_path(const std::string& bundle, const std::string& root_path) {
  std::string full = root_path;
  if (root_path.empty() || root_path[0] != '/') {
    char real_bundle[PATH_MAX];
    if (!::realpath(bundle.c_str(), real_bundle)) return Error::from_errno(cat("bundle ", bundle));
    full = path_join(real_bundle, root_path);
  }
  std::string clean = absolute_path(full);
  char real[PATH_MAX];
  if (!::realpath(clean.c_str(), real)) return Error::from_errno(cat("root.path ", clean));
  if (clean != real)
    return Error::invalid(cat("root.path \"", root_path, "\": ", clean, " goes through a symlink (to ", real,
                              "); give the real path"));
  struct stat st{};
  if (::stat(real, &st) < 0) return Error::from_errno(cat("root.path ", clean));
  if (!S_ISDIR(st.st_mode)) return Error::invalid(cat("root.path ", clean, ": not a directory"));
  return clean;
}

std::pair<std::string, std::string> split_parent(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.rfind('/');
  if (slash == std::string::npos) return {"/", p};
  return {slash == 0 ? "/" : p.substr(0, slash), p.substr(slash + 1)};
}

Result<UniqueFd> open_in_root(int rootfd, const std::string& path, int flags) {
  if (!(flags & (O_WRONLY | O_RDWR)) && !(flags & O_RDONLY)) flags |= O_PATH;
  return sys::openat2(rootfd, path, static_cast<uint64_t>(flags), 0, kInRoot);
}

namespace {

constexpr int kMaxSymlinkDepth = 40;

// If `path` (inside the root) is a symlink, its target as a path inside the root.
std::optional<std::string> dangling_target(int rootfd, const std::string& path) {
  auto lfd = sys::openat2(rootfd, path, O_PATH | O_NOFOLLOW, 0, kInRoot);
  if (!lfd) return std::nullopt;
  struct stat st{};
  if (::fstat(lfd->get(), &st) < 0 || !S_ISLNK(st.st_mode)) return std::nullopt;
  char buf[4096];
  ssize_t n = ::readlinkat(lfd->get(), "", buf, sizeof buf - 1);
  if (n <= 0) return std::nullopt;
  std::string target(buf, static_cast<size_t>(n));
  if (target[0] == '/') return target;
  return split_parent(path).first + "/" + target;
}

Result<UniqueFd> mkdir_rec(int rootfd, const std::string& path, mode_t mode, int depth) {
  if (depth > kMaxSymlinkDepth) return Error(ELOOP, cat("mkdir ", path, ": too many symlinks"));
  auto fd = sys::openat2(rootfd, path, O_PATH | O_DIRECTORY, 0, kInRoot);
  if (fd || fd.error().code() != ENOENT) return fd;
  // Walk down: existing components (symlinks resolved inside the root) are kept,
  // a dangling symlink is followed to its target inside the root, the rest is created.
  std::string done = "/";
  auto parts = split(path, '/');
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& comp = parts[i];
    if (comp.empty() || comp == ".") continue;
    std::string next = done == "/" ? "/" + comp : done + "/" + comp;
    auto step = sys::openat2(rootfd, next, O_PATH | O_DIRECTORY, 0, kInRoot);
    if (step) {
      done = next;
      continue;
    }
    if (step.error().code() != ENOENT) return std::move(step).error().context(cat("mkdir ", path));
    if (auto target = dangling_target(rootfd, next)) {
      std::string rest;
      for (size_t k = i + 1; k < parts.size(); ++k)
        if (!parts[k].empty()) rest += "/" + parts[k];
      return mkdir_rec(rootfd, *target + rest, mode, depth + 1);
    }
    auto parent = TRY(sys::openat2(rootfd, done, O_PATH | O_DIRECTORY, 0, kInRoot));
    if (::mkdirat(parent.get(), comp.c_str(), mode) < 0 && errno != EEXIST) return Error::from_errno(cat("mkdir ", next));
    done = next;
  }
  return sys::openat2(rootfd, path, O_PATH | O_DIRECTORY, 0, kInRoot);
}

Result<UniqueFd> mkfile_rec(int rootfd, const std::string& path, mode_t mode, int depth) {
  if (depth > kMaxSymlinkDepth) return Error(ELOOP, cat("create ", path, ": too many symlinks"));
  auto fd = sys::openat2(rootfd, path, O_PATH, 0, kInRoot);
  if (fd || fd.error().code() != ENOENT) return fd;
  auto [parent, name] = split_parent(path);
  auto pfd = TRY(mkdir_rec(rootfd, parent, 0755, depth));
  if (auto target = dangling_target(rootfd, path)) return mkfile_rec(rootfd, *target, mode, depth + 1);
  int f = ::openat(pfd.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
  if (f < 0 && errno != EEXIST) return Error::from_errno(cat("create ", path));
  if (f >= 0) ::close(f);
  return sys::openat2(rootfd, path, O_PATH, 0, kInRoot);
}

}  // namespace

Result<UniqueFd> mkdir_in_root(int rootfd, const std::string& path, mode_t mode) {
  return mkdir_rec(rootfd, path, mode, 0);
}

Result<UniqueFd> mkfile_in_root(int rootfd, const std::string& path, mode_t mode) {
  return mkfile_rec(rootfd, path, mode, 0);
}

Status check_procfs(int fd, const std::string& what) {
  struct statfs sfs{};
  if (::fstatfs(fd, &sfs) < 0) return Error::from_errno(cat("statfs ", what));
  if (sfs.f_type != PROC_SUPER_MAGIC) return Error(EXDEV, cat(what, ": not on procfs (refusing to write through it)"));
  return ok();
}

Result<UniqueFd> open_proc_file(int procfd, const std::string& rel, int flags) {
  auto fd = TRY(sys::openat2(procfd, rel, static_cast<uint64_t>(flags), 0,
                             RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV));
  TRY(check_procfs(fd.get(), "/proc/" + rel));
  return fd;
}

}  // namespace vessel::container
