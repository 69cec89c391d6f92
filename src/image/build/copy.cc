#include "image/build/copy.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>

#include "common/fs.h"
#include "common/strings.h"
#include "container/rootfs_path.h"
#include "image/layer.h"
#include "image/libs.h"
#include "sys/syscalls.h"

namespace vessel::image::build {

namespace {

using container::mkdir_in_root;
using container::open_in_root;

// A real (not O_PATH) fd of the directory `path` inside the root, for fchown/fchmod and *at() calls.
Result<UniqueFd> open_dir(int root, const std::string& path) {
  return sys::openat2(root, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

// True when fd is a tar archive (any compression libarchive reads).
bool is_tar(int fd) {
  if (::lseek(fd, 0, SEEK_SET) < 0) return false;
  ArchiveReadPtr a(la().archive_read_new());
  la().archive_read_support_filter_all(a.get());
  la().archive_read_support_format_tar(a.get());
  la().archive_read_support_format_gnutar(a.get());
  archive_entry* e;
  bool ok = la().archive_read_open_fd(a.get(), fd, 1 << 16) == ARCHIVE_OK &&
            la().archive_read_next_header(a.get(), &e) == ARCHIVE_OK;
  (void)::lseek(fd, 0, SEEK_SET);
  return ok;
}

Status copy_data(int from, int to, const std::string& what) {
  while (true) {
    ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, 1 << 30, 0);
    if (n == 0) return ok();
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) return Error::from_errno("copy " + what);
    break;
  }
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno("read " + what);
    if (n == 0) return ok();
    TRY(write_all(to, std::string_view(buf, static_cast<size_t>(n))));
  }
}

// Creates the entries of one copy below the rootfs, keeping the directory fds it opened.
class Writer {
 public:
  Writer(int root, const CopyOptions& o, bool keep_owner) : root_(root), o_(o), keep_owner_(keep_owner) {}

  // The directory `path` (absolute in the rootfs), created (mode 0755, root) when missing.
  Result<int> dir(const std::string& path) {
    if (auto it = dirs_.find(path); it != dirs_.end()) return it->second.get();
    TRYC(mkdir_in_root(root_, path, 0755), "destination " + path);
    auto fd = TRYC(open_dir(root_, path), "destination " + path);
    int raw = fd.get();
    dirs_.emplace(path, std::move(fd));
    return raw;
  }

  Status put(SourceEntry& e, const std::string& target, bool is_top_dir) {
    uid_t uid = o_.uid.value_or(keep_owner_ ? e.st.st_uid : 0);
    gid_t gid = o_.gid.value_or(keep_owner_ ? e.st.st_gid : 0);
    mode_t mode = o_.mode.value_or(e.st.st_mode & 07777);
    if (S_ISDIR(e.st.st_mode)) {
      bool existed = static_cast<bool>(open_in_root(root_, target, O_PATH | O_DIRECTORY));
      int fd = TRY(dir(target));
      if (is_top_dir && existed) return ok();  // COPY dir/ /existing/: the destination keeps its own metadata
      if (::fchown(fd, uid, gid) < 0 || ::fchmod(fd, mode) < 0) return Error::from_errno("set owner and mode of " + target);
      return ok();
    }
    auto [parent_path, name] = container::split_parent(target);
    if (name.empty() || name == "/") return Error::invalid("cannot copy a file onto \"/\"");
    int parent = TRY(dir(parent_path));
    struct stat old{};
    if (::fstatat(parent, name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0) {
      if (S_ISDIR(old.st_mode)) return Error(EISDIR, cat("cannot replace the directory ", target, " with a file"));
      if (::unlinkat(parent, name.c_str(), 0) < 0) return Error::from_errno("replace " + target);
    }
    timespec times[2] = {e.st.st_atim, e.st.st_mtim};
    if (S_ISREG(e.st.st_mode)) {
      UniqueFd out(::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!out) return Error::from_errno("create " + target);
      TRY(copy_data(e.fd.get(), out.get(), e.rel));
      if (::fchown(out.get(), uid, gid) < 0 || ::fchmod(out.get(), mode) < 0)
        return Error::from_errno("set owner and mode of " + target);
      (void)::futimens(out.get(), times);
      return ok();
    }
    if (S_ISLNK(e.st.st_mode)) {
      if (::symlinkat(e.link.c_str(), parent, name.c_str()) < 0) return Error::from_errno("symlink " + target);
      (void)::fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
      (void)::utimensat(parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
      return ok();
    }
    if (S_ISFIFO(e.st.st_mode)) {
      if (::mknodat(parent, name.c_str(), S_IFIFO | (mode & 0777), 0) < 0) return Error::from_errno("mkfifo " + target);
      (void)::fchownat(parent, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
      return ok();
    }
    if (S_ISSOCK(e.st.st_mode)) return ok();  // sockets are not content
    return Error(EPERM, cat("source \"", e.rel, "\" is a device node; COPY does not copy devices"));
  }

 private:
  int root_;
  const CopyOptions& o_;
  bool keep_owner_;
  std::map<std::string, UniqueFd> dirs_;
};

std::string base_name(const std::string& rel) {
  auto pos = rel.rfind('/');
  return pos == std::string::npos ? rel : rel.substr(pos + 1);
}

}  // namespace

Status copy_into(const SourceRoot& src, const std::vector<std::string>& rels, int rootfs_fd, const std::string& dest,
                 const CopyOptions& o) {
  std::string d = clean_path(dest);
  if (d.empty() || d[0] != '/') return Error::invalid("destination \"" + dest + "\" must be absolute");
  bool dest_is_dir = dest.back() == '/' || rels.size() > 1 || d == "/" ||
                     static_cast<bool>(open_in_root(rootfs_fd, d, O_PATH | O_DIRECTORY));
  Writer w(rootfs_fd, o, !src.is_context());
  for (auto& rel : rels) {
    auto fd = TRYC(src.open(rel, O_PATH), "source \"" + rel + "\"");
    struct stat st{};
    if (::fstat(fd.get(), &st) < 0) return Error::from_errno("stat " + rel);
    if (o.extract_archives && S_ISREG(st.st_mode)) {
      auto file = TRY(src.open(rel, O_RDONLY));
      if (is_tar(file.get())) {
        TRY(w.dir(d));
        auto rw = TRYC(open_dir(rootfs_fd, d), "destination " + d);
        TRYC(unpack_tar(file.get(), rw.get(), UnpackOptions{.whiteouts = false}), "ADD " + rel);
        continue;
      }
    }
    // A directory's contents go into the destination; a file goes to it or into it.
    std::string top = S_ISDIR(st.st_mode) ? d : (dest_is_dir ? clean_path(d + "/" + base_name(rel)) : d);
    TRYC(src.walk(rel,
                  [&](SourceEntry& e) -> Status {
                    std::string below = e.rel.substr(std::min(e.rel.size(), rel.size()));
                    if (!below.empty() && below[0] != '/') below = "/" + below;
                    return w.put(e, clean_path(top + below), e.rel == rel);
                  }),
         "copy " + (rel.empty() ? std::string(".") : rel));
  }
  return ok();
}

}  // namespace vessel::image::build
