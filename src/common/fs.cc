#include "common/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "common/strings.h"

namespace vessel {

Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Error::from_errno(cat("open ", path));
  return UniqueFd(fd);
}

Result<UniqueFd> open_at(int dirfd, const std::string& path, int flags, mode_t mode) {
  int fd = ::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Error::from_errno(cat("open ", path));
  return UniqueFd(fd);
}

Result<std::string> read_fd(int fd) {
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("read");
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> read_fd_bounded(int fd, size_t limit) {
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("read");
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > limit) return Error(EFBIG, cat("larger than ", limit, " bytes"));
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

static Result<UniqueFd> check_regular(UniqueFd fd, const std::string& path) {
  struct stat st{};
  if (::fstat(fd.get(), &st) < 0) return Error::from_errno(cat("stat ", path));
  if (!S_ISREG(st.st_mode)) return Error(EINVAL, cat(path, ": not a regular file"));
  // Back to blocking reads (a regular file never blocks; this only keeps later readers simple).
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl >= 0) (void)::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
  return fd;
}

Result<UniqueFd> open_regular_file(const std::string& path) {
  auto fd = TRY(open_file(path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  return check_regular(std::move(fd), path);
}

Result<UniqueFd> open_regular_at(int dirfd, const std::string& path, uint64_t resolve) {
  open_how how{};
  how.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
  how.resolve = resolve;
  int fd = static_cast<int>(::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how));
  if (fd < 0) return Error::from_errno(cat("open ", path));
  return check_regular(UniqueFd(fd), path);
}

Result<std::string> read_regular_file(const std::string& path, size_t limit) {
  auto fd = TRY(open_regular_file(path));
  struct stat st{};
  if (::fstat(fd.get(), &st) == 0 && static_cast<uint64_t>(st.st_size) > limit)
    return Error(EFBIG, cat(path, ": ", st.st_size, " bytes, larger than the limit of ", limit));
  return read_fd_bounded(fd.get(), limit).context(cat("read ", path));
}

Result<std::string> read_file_or_pipe(const std::string& path, size_t limit) {
  bool own_fd = starts_with(path, "/dev/fd/") || starts_with(path, "/proc/self/fd/");
  if (!own_fd) return read_regular_file(path, limit);
  auto fd = TRY(open_file(path, O_RDONLY | O_NONBLOCK | O_NOCTTY));
  struct stat st{};
  if (::fstat(fd.get(), &st) < 0) return Error::from_errno(cat("stat ", path));
  if (!S_ISFIFO(st.st_mode)) return read_regular_file(path, limit);
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl >= 0) (void)::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
  return read_fd_bounded(fd.get(), limit).context(cat("read ", path));
}

Result<std::string> read_file(const std::string& path) {
  auto fd = TRY(open_file(path, O_RDONLY));
  return read_fd(fd.get()).context(cat("read ", path));
}

Status write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return ok();
}

Status write_file(const std::string& path, std::string_view data, int extra_flags, mode_t mode) {
  auto fd = TRY(open_file(path, O_WRONLY | O_CREAT | O_TRUNC | extra_flags, mode));
  return write_all(fd.get(), data).context(cat("write ", path));
}

Status write_file_at(int dirfd, const std::string& name, std::string_view data) {
  auto fd = TRY(open_at(dirfd, name, O_WRONLY | O_TRUNC));
  return write_all(fd.get(), data).context(cat("write ", name));
}

Status write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = cat(path, ".tmp.", ::getpid());
  {
    auto fd = TRY(open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    auto st = write_all(fd.get(), data);
    if (!st) {
      ::unlink(tmp.c_str());
      return std::move(st).context(cat("write ", tmp));
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    auto e = Error::from_errno(cat("rename ", tmp, " to ", path));
    ::unlink(tmp.c_str());
    return e;
  }
  return ok();
}

Status mkdir_p(const std::string& path, mode_t mode) {
  if (path.empty()) return ok();
  std::string cur;
  for (const auto& part : split(path, '/')) {
    if (part.empty()) {
      if (cur.empty()) cur = "/";
      continue;
    }
    if (!cur.empty() && cur.back() != '/') cur += '/';
    cur += part;
    if (::mkdir(cur.c_str(), mode) < 0 && errno != EEXIST) return Error::from_errno(cat("mkdir ", cur));
  }
  return ok();
}

static Status remove_tree_at(int parent, const char* name, dev_t dev) {
  int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOTDIR || errno == ELOOP) {
      if (::unlinkat(parent, name, 0) < 0 && errno != ENOENT) return Error::from_errno(cat("unlink ", name));
      return ok();
    }
    if (errno == ENOENT) return ok();
    return Error::from_errno(cat("open ", name));
  }
  struct stat st{};
  if (::fstat(fd, &st) == 0 && st.st_dev != dev) {
    ::close(fd);
    return Error(EBUSY, cat("remove ", name, ": is a mount point"));
  }
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return Error::from_errno(cat("opendir ", name));
  }
  Status result;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    if (e->d_type == DT_DIR) {
      auto st2 = remove_tree_at(::dirfd(d), e->d_name, dev);
      if (!st2 && result) result = std::move(st2);
    } else if (::unlinkat(::dirfd(d), e->d_name, 0) < 0 && errno != ENOENT && result) {
      result = Error::from_errno(cat("unlink ", e->d_name));
    }
  }
  ::closedir(d);
  if (!result) return result;
  if (::unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT) return Error::from_errno(cat("rmdir ", name));
  return ok();
}

Status remove_tree(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return ok();
    return Error::from_errno(cat("stat ", path));
  }
  return remove_tree_at(AT_FDCWD, path.c_str(), st.st_dev).context(cat("remove ", path));
}

bool path_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::string path_join(std::string_view a, std::string_view b) {
  std::string out(a);
  if (b.empty()) return out;
  if (!out.empty() && out.back() != '/' && b.front() != '/') out += '/';
  if (!out.empty() && out.back() == '/' && b.front() == '/') b.remove_prefix(1);
  out += b;
  return out;
}

std::string absolute_path(std::string_view path) {
  std::string full;
  if (!path.empty() && path.front() == '/') {
    full = std::string(path);
  } else {
    char cwd[PATH_MAX];
    full = ::getcwd(cwd, sizeof cwd) ? std::string(cwd) : std::string("/");
    full = path_join(full, path);
  }
  std::vector<std::string> parts;
  for (auto& p : split(full, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  std::string out;
  for (auto& p : parts) out += "/" + p;
  return out.empty() ? "/" : out;
}

}  // namespace vessel
