#include "container/sealed_exe.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "common/unique_fd.h"

extern char** environ;

namespace vessel::container {
namespace {

constexpr const char* kMarker = "_VESSEL_SEALED_EXE";

Error exec_fd(int fd, char** argv) {
  ::setenv(kMarker, "1", 1);
  ::syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
  int err = errno;
  ::unsetenv(kMarker);
  return Error::from_errno(err, "re-execute vessel from its sealed binary");
}

// A read-only bind mount of the binary, attached nowhere.
Result<UniqueFd> readonly_clone() {
  long fd = ::syscall(SYS_open_tree, AT_FDCWD, "/proc/self/exe", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) return Error::from_errno("open_tree /proc/self/exe");
  UniqueFd tree(static_cast<int>(fd));
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return Error::from_errno("mount_setattr read-only");
  return tree;
}

// A memfd holding a copy of the binary, sealed against every change.
Result<UniqueFd> memfd_copy() {
  UniqueFd src(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  if (!src) return Error::from_errno("open /proc/self/exe");
  UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, "vessel", 0x0001U | 0x0002U /*CLOEXEC|ALLOW_SEALING*/)));
  if (!mem) return Error::from_errno("memfd_create");
  struct stat st{};
  if (::fstat(src.get(), &st) < 0) return Error::from_errno("stat /proc/self/exe");
  off_t off = 0;
  while (off < st.st_size) {
    ssize_t n = ::sendfile(mem.get(), src.get(), &off, static_cast<size_t>(st.st_size - off));
    if (n <= 0) return Error::from_errno("copy vessel into a memfd");
  }
  if (::fcntl(mem.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0)
    return Error::from_errno("seal the memfd");
  return mem;
}

}  // namespace

bool exe_is_sealed() {
  struct statvfs vfs{};
  if (::statvfs("/proc/self/exe", &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) return true;
  UniqueFd fd(::open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  int seals = fd ? ::fcntl(fd.get(), F_GET_SEALS) : -1;
  return seals >= 0 && (seals & F_SEAL_WRITE);
}

Status ensure_sealed_exe(char** argv) {
  if (std::getenv(kMarker)) {
    ::unsetenv(kMarker);
    if (exe_is_sealed()) return ok();
    return Error(EPERM, "vessel's binary is still writable after re-executing it sealed");
  }
  if (exe_is_sealed()) return ok();
  if (auto tree = readonly_clone()) return exec_fd(tree->get(), argv);
  auto mem = memfd_copy();
  if (!mem) return std::move(mem).error().context("protect vessel's binary (CVE-2019-5736)");
  return exec_fd(mem->get(), argv);
}

}  // namespace vessel::container
