#include "container/devices.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/strings.h"
#include "container/rootfs_path.h"
#include "sys/syscalls.h"

namespace vessel::container {

std::vector<oci::Device> default_devices() {
  auto dev = [](const char* path, int major, int minor) {
    oci::Device d;
    d.type = 'c';
    d.path = path;
    d.major = major;
    d.minor = minor;
    d.file_mode = 0666;
    d.uid = 0;
    d.gid = 0;
    return d;
  };
  return {dev("/dev/null", 1, 3), dev("/dev/zero", 1, 5), dev("/dev/full", 1, 7),
          dev("/dev/random", 1, 8), dev("/dev/urandom", 1, 9), dev("/dev/tty", 5, 0)};
}

static Status create_device(int rootfd, const oci::Device& d, bool bind_from_host) {
  auto [parent, name] = split_parent(d.path);
  auto pfd = TRY(mkdir_in_root(rootfd, parent));
  if (bind_from_host) {
    auto target = TRY(mkfile_in_root(rootfd, d.path, 0000));
    return sys::mount(d.path, sys::fd_path(target.get()), "", MS_BIND);
  }
  mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
  mode_t perm = d.file_mode.value_or(0666) & 07777;
  // An existing entry (from the image) is replaced.
  ::unlinkat(pfd.get(), name.c_str(), 0);
  if (::mknodat(pfd.get(), name.c_str(), type | perm,
                makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor))) < 0)
    return Error::from_errno(cat("mknod ", d.path));
  if (::fchmodat(pfd.get(), name.c_str(), perm, 0) < 0) return Error::from_errno(cat("chmod ", d.path));
  if (::fchownat(pfd.get(), name.c_str(), d.uid.value_or(0), d.gid.value_or(0), AT_SYMLINK_NOFOLLOW) < 0)
    return Error::from_errno(cat("chown ", d.path));
  return ok();
}

Status create_devices(int rootfd, const std::vector<oci::Device>& devices, bool bind_from_host) {
  mode_t old = ::umask(0);
  Status st;
  for (const auto& d : devices) {
    st = create_device(rootfd, d, bind_from_host);
    if (!st) break;
  }
  ::umask(old);
  return st;
}

Status create_dev_symlinks(int rootfd) {
  auto dev = TRY(mkdir_in_root(rootfd, "/dev"));
  const std::pair<const char*, const char*> links[] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"}};
  for (auto& [target, name] : links) {
    struct stat st{};
    if (std::string(name) == "ptmx") ::unlinkat(dev.get(), name, 0);
    if (::fstatat(dev.get(), name, &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
    if (::symlinkat(target, dev.get(), name) < 0) return Error::from_errno(cat("symlink /dev/", name));
  }
  if (path_exists("/proc/kcore")) {
    struct stat st{};
    if (::fstatat(dev.get(), "core", &st, AT_SYMLINK_NOFOLLOW) < 0 && ::symlinkat("/proc/kcore", dev.get(), "core") < 0)
      return Error::from_errno("symlink /dev/core");
  }
  return ok();
}

}  // namespace vessel::container
