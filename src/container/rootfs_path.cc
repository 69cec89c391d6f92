#include "container/rootfs_path.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/strings.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {
constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
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

Result<UniqueFd> mkdir_in_root(int rootfd, const std::string& path, mode_t mode) {
  auto fd = sys::openat2(rootfd, path, O_PATH | O_DIRECTORY, 0, kInRoot);
  if (fd || fd.error().code() != ENOENT) return fd;
  auto [parent, name] = split_parent(path);
  if (name.empty() || name == "." || name == "..") return Error::invalid(cat("bad path ", path));
  auto pfd = TRY(mkdir_in_root(rootfd, parent, mode));
  if (::mkdirat(pfd.get(), name.c_str(), mode) < 0 && errno != EEXIST) return Error::from_errno(cat("mkdir ", path));
  return sys::openat2(rootfd, path, O_PATH | O_DIRECTORY, 0, kInRoot);
}

Result<UniqueFd> mkfile_in_root(int rootfd, const std::string& path, mode_t mode) {
  auto fd = sys::openat2(rootfd, path, O_PATH, 0, kInRoot);
  if (fd || fd.error().code() != ENOENT) return fd;
  auto [parent, name] = split_parent(path);
  auto pfd = TRY(mkdir_in_root(rootfd, parent));
  int f = ::openat(pfd.get(), name.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, mode);
  if (f < 0 && errno != EEXIST) return Error::from_errno(cat("create ", path));
  if (f >= 0) ::close(f);
  return sys::openat2(rootfd, path, O_PATH, 0, kInRoot);
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
