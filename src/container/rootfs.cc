#include "container/rootfs.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "common/fs.h"
#include "common/strings.h"
#include "container/devices.h"
#include "container/lsm.h"
#include "container/rootfs_path.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

// Flags a bind remount must keep: the kernel refuses to clear them in a user namespace.
unsigned long locked_flags(const std::string& path) {
  struct statvfs s{};
  if (::statvfs(path.c_str(), &s) < 0) return 0;
  unsigned long f = 0;
  if (s.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (s.f_flag & ST_NODEV) f |= MS_NODEV;
  if (s.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (s.f_flag & ST_RDONLY) f |= MS_RDONLY;
  if (s.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (s.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (s.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

constexpr unsigned long kRemountable = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_NODIRATIME |
                                       MS_RELATIME | MS_STRICTATIME | MS_SYNCHRONOUS | MS_DIRSYNC | MS_MANDLOCK |
                                       MS_LAZYTIME;

// "/dev" however written ("/dev/", "//dev").
bool is_dev(const std::string& dest) {
  std::string d;
  for (char c : dest)
    if (c != '/' || d.empty() || d.back() != '/') d += c;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d == "/dev";
}

// A mount made writable first and read-only at the end, as runc does: a tmpfs or /dev.
bool delayed_readonly(const oci::Mount& m) {
  return !m.parsed.bind && (m.type == "tmpfs" || is_dev(m.destination));
}

Status mount_bind(int rootfd, const RootfsPlan& plan, const oci::Mount& m, int source_fd) {
  std::string source = m.source.empty() || m.source[0] == '/' ? m.source : path_join(plan.bundle, m.source);
  struct stat st{};
  if (source_fd >= 0) {
    // Opened for us by the runtime, outside the user namespace (see RootfsPlan::source_fds).
    if (::fstat(source_fd, &st) < 0) return Error::from_errno(cat("bind source ", source));
    source = sys::fd_path(source_fd);
  } else if (::stat(source.c_str(), &st) < 0) {
    return Error::from_errno(cat("bind source ", source));
  }
  auto target = S_ISDIR(st.st_mode) ? TRY(mkdir_in_root(rootfd, m.destination))
                                    : TRY(mkfile_in_root(rootfd, m.destination));
  unsigned long rec = m.parsed.recursive ? MS_REC : 0;
  TRY(sys::mount(source, sys::fd_path(target.get()), "", MS_BIND | rec));
  unsigned long want = m.parsed.flags & kRemountable;
  if (want || (m.parsed.clear & kRemountable)) {
    // The fd still names the directory under the new mount: look the path up again.
    auto mounted = TRY(open_in_root(rootfd, m.destination, O_PATH));
    unsigned long keep = plan.in_userns ? (locked_flags(sys::fd_path(mounted.get())) & ~m.parsed.clear) : 0;
    TRY(sys::mount("", sys::fd_path(mounted.get()), "", MS_BIND | MS_REMOUNT | rec | want | keep));
  }
  return ok();
}

Status mount_cgroups(int rootfd, const RootfsPlan& plan, const oci::Mount& m) {
  unsigned long flags = m.parsed.flags & ~MS_RDONLY;
  bool ro = m.parsed.flags & MS_RDONLY;
  auto target = TRY(mkdir_in_root(rootfd, m.destination));
  bool v2_only = plan.cgroups.size() == 1 && plan.cgroups[0].fstype == "cgroup2";
  if (plan.cgroups.empty()) return Error(ENOENT, "no cgroup hierarchy to mount");
  if (v2_only) {
    if (plan.new_cgroupns) {
      return sys::mount("cgroup2", sys::fd_path(target.get()), "cgroup2", flags | (ro ? MS_RDONLY : 0));
    }
    TRY(sys::mount(path_join(plan.cgroups[0].mountpoint, plan.cgroups[0].path), sys::fd_path(target.get()), "", MS_BIND));
    auto mounted = TRY(open_in_root(rootfd, m.destination, O_PATH));
    return sys::mount("", sys::fd_path(mounted.get()), "", MS_BIND | MS_REMOUNT | flags | (ro ? MS_RDONLY : 0));
  }
  // v1 or hybrid: a tmpfs holding one mount per hierarchy, as runc lays it out.
  TRY(sys::mount("tmpfs", sys::fd_path(target.get()), "tmpfs", flags, "mode=755"));
  for (const auto& cg : plan.cgroups) {
    std::string name = split_parent(cg.mountpoint).second;
    std::string dest = path_join(m.destination, name);
    auto sub = TRY(mkdir_in_root(rootfd, dest));
    if (plan.new_cgroupns) {
      std::string opts = cg.fstype == "cgroup2" ? "" : cg.options;
      TRY(sys::mount(cg.fstype, sys::fd_path(sub.get()), cg.fstype, flags | (ro ? MS_RDONLY : 0), opts));
    } else {
      TRY(sys::mount(path_join(cg.mountpoint, cg.path), sys::fd_path(sub.get()), "", MS_BIND));
      auto mounted = TRY(open_in_root(rootfd, dest, O_PATH));
      TRY(sys::mount("", sys::fd_path(mounted.get()), "", MS_BIND | MS_REMOUNT | flags | (ro ? MS_RDONLY : 0)));
    }
  }
  if (ro) {
    auto mounted = TRY(open_in_root(rootfd, m.destination, O_PATH));
    TRY(sys::mount("", sys::fd_path(mounted.get()), "", MS_REMOUNT | flags | MS_RDONLY, "mode=755"));
  }
  return ok();
}

// procfs and sysfs go on an ordinary directory only: a symlink (or a file) in the image at
// their place is refused, as runc does, rather than followed.
Status check_pseudo_fs_target(int rootfd, const oci::Mount& m) {
  auto [parent, name] = split_parent(m.destination);
  auto dir = open_in_root(rootfd, parent, O_PATH | O_DIRECTORY);
  if (!dir) return dir.error().code() == ENOENT ? ok() : std::move(dir).error();
  struct stat st{};
  if (::fstatat(dir->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? ok() : Error::from_errno(cat("stat ", m.destination));
  if (!S_ISDIR(st.st_mode))
    return Error(ENOTDIR, cat("filesystem \"", m.type, "\" must be mounted on ordinary directory: ",
                              m.destination, " in the rootfs is ", S_ISLNK(st.st_mode) ? "a symlink" : "not a directory"));
  return ok();
}

// The recursive attributes of "rro", "rnosuid"… on the mount at the destination and below.
Status set_recursive_attrs(int rootfd, const oci::Mount& m) {
  if (!m.parsed.rec_attr_set && !m.parsed.rec_attr_clr) return ok();
  auto mounted = TRY(open_in_root(rootfd, m.destination, O_PATH));
  mount_attr attr{};
  attr.attr_set = m.parsed.rec_attr_set;
  attr.attr_clr = m.parsed.rec_attr_clr;
  if (::mount_setattr(mounted.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
    return Error::from_errno("mount_setattr (recursive mount options)");
  return ok();
}

Status mount_one(int rootfd, const RootfsPlan& plan, const oci::Mount& m, int source_fd) {
  if (m.parsed.bind) {
    TRY(mount_bind(rootfd, plan, m, source_fd));
  } else if (m.type == "cgroup" || m.type == "cgroup2") {
    TRY(mount_cgroups(rootfd, plan, m));
  } else {
    if (m.type == "proc" || m.type == "sysfs") TRY(check_pseudo_fs_target(rootfd, m));
    // As runc (1.1.9 on): a tmpfs over a directory that is there already takes its mode
    // (sticky, set-id bits too) unless the options name one (theirs come later and win).
    std::string dir_mode;
    if (m.type == "tmpfs") {
      if (auto existing = open_in_root(rootfd, m.destination, O_PATH | O_DIRECTORY)) {
        struct stat st{};
        if (::fstat(existing->get(), &st) == 0) {
          char mode[16];
          std::snprintf(mode, sizeof mode, "mode=%04o", static_cast<unsigned>(st.st_mode & 07777));
          dir_mode = mode;
        }
      }
    }
    auto target = TRY(mkdir_in_root(rootfd, m.destination));
    // A read-only tmpfs or /dev is made read-only at the end (remount_readonly_mounts):
    // /dev's nodes and the mounts below it come first, as in runc.
    unsigned long flags = m.parsed.flags & ~MS_REMOUNT;
    if (delayed_readonly(m)) flags &= ~MS_RDONLY;
    // linux.mountLabel labels what the container writes to (tmpfs, devpts…), as runc: not
    // procfs, sysfs or mqueue.
    bool labelled = m.type != "proc" && m.type != "sysfs" && m.type != "mqueue";
    std::string data = labelled ? with_mount_label(m.parsed.data, plan.spec->linux_.mount_label) : m.parsed.data;
    if (!dir_mode.empty()) data = data.empty() ? dir_mode : dir_mode + "," + data;
    auto st = sys::mount(m.source, sys::fd_path(target.get()), m.type, flags, data);
    if (!st && m.type == "sysfs" && (st.error().code() == EPERM || st.error().code() == EBUSY)) {
      // No network namespace of our own (or a user namespace): sysfs cannot be
      // mounted fresh, so bind the host's, as runc does.
      TRY(sys::mount("/sys", sys::fd_path(target.get()), "", MS_BIND | MS_REC));
      auto mounted = TRY(open_in_root(rootfd, m.destination, O_PATH));
      TRY(sys::mount("", sys::fd_path(mounted.get()), "", MS_BIND | MS_REMOUNT | MS_REC |
                                                               (m.parsed.flags & kRemountable) |
                                                               (plan.in_userns ? locked_flags("/sys") : 0)));
    } else if (!st) {
      return st;
    }
  }
  if (m.parsed.propagation) {
    auto mounted = TRY(open_in_root(rootfd, m.destination, O_PATH));
    TRY(sys::mount("", sys::fd_path(mounted.get()), "", m.parsed.propagation));
  }
  return set_recursive_attrs(rootfd, m);
}

bool dev_is_bind_mounted(const oci::Spec& spec) {
  for (const auto& m : spec.mounts)
    if (m.destination == "/dev" && m.parsed.bind) return true;
  return false;
}

Status mount_config(const RootfsPlan& plan);

}  // namespace

Result<HostRootfsTree> host_rootfs_tree(const std::string& rootfs) {
  long fd = ::syscall(SYS_open_tree, AT_FDCWD, rootfs.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (fd < 0) return Error::from_errno(cat("bind the rootfs ", rootfs, " (open_tree)"));
  HostRootfsTree t;
  t.tree.reset(static_cast<int>(fd));
  struct statx sx{};
  if (::statx(t.tree.get(), "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0) return Error::from_errno("statx the rootfs bind");
  if (!(sx.stx_mask & STATX_MNT_ID)) return Error(ENOTSUP, "this kernel does not report mount IDs (statx STX_MNT_ID)");
  t.mount_id = sx.stx_mnt_id;
  return t;
}

Status attach_host_rootfs_tree(const HostRootfsTree& t, const std::string& rootfs) {
  if (::syscall(SYS_move_mount, t.tree.get(), "", AT_FDCWD, rootfs.c_str(), MOVE_MOUNT_F_EMPTY_PATH) < 0)
    return Error::from_errno(cat("bind the rootfs ", rootfs, " on itself (move_mount)"));
  return ok();
}

Status detach_host_rootfs_tree(const std::string& rootfs, uint64_t mount_id) {
  struct statx sx{};
  if (::statx(AT_FDCWD, rootfs.c_str(), AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &sx) < 0) {
    if (errno == ENOENT) return ok();  // the bundle is gone, and the bind with it
    return Error::from_errno(cat("statx ", rootfs));
  }
  if (sx.stx_mnt_id == mount_id) {
    if (::umount2(rootfs.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
      return Error::from_errno(cat("detach the container's mounts at ", rootfs));
    return ok();
  }
  // Not on top: gone already (fine), or covered by a mount that is not ours (left alone).
  auto mountinfo = TRY(open_file("/proc/self/mountinfo", O_RDONLY));
  auto text = TRYC(read_fd_bounded(mountinfo.get(), 16 << 20), "read /proc/self/mountinfo");
  {
    std::string id = std::to_string(mount_id) + " ";
    for (const auto& line : split(text, '\n'))
      if (starts_with(line, id))
        return Error(EBUSY, cat("the container's mounts at ", rootfs, " (mount ", mount_id,
                                ") are covered by another mount: left as they are"));
  }
  return ok();
}

Status prepare_rootfs(const RootfsPlan& plan) {
  const oci::Spec& spec = *plan.spec;
  if (plan.host_namespace) return mount_config(plan);
  unsigned long prop = spec.linux_.rootfs_propagation.empty() ? (MS_SLAVE | MS_REC)
                                                             : oci::propagation_from_name(spec.linux_.rootfs_propagation);
  TRYC(sys::mount("", "/", "", prop), "set propagation of /");
  // The mount holding the rootfs becomes private (slave when that was asked), as runc does:
  // pivot_root refuses a shared parent, the bind below must not propagate to the host, and
  // an unbindable one could not be bound at all. finalize_rootfs gives the container's "/"
  // the asked propagation once it is "/".
  unsigned long parent_prop = (prop & MS_SLAVE) ? MS_SLAVE : MS_PRIVATE;
  for (std::string p = split_parent(plan.rootfs).first;; p = split_parent(p).first) {
    if (::mount("", p.c_str(), nullptr, parent_prop, nullptr) == 0) break;
    if (errno != EINVAL || p == "/") return Error::from_errno(cat("make the mount holding the rootfs (", p, ") private"));
  }
  TRY(sys::mount(plan.rootfs, plan.rootfs, "", MS_BIND | MS_REC));
  return mount_config(plan);
}

namespace {
// The config's mounts and /dev, under the rootfs bind.
Status mount_config(const RootfsPlan& plan) {
  const oci::Spec& spec = *plan.spec;
  auto root = TRY(open_file(plan.rootfs, O_PATH | O_DIRECTORY));
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    int source_fd = i < plan.source_fds.size() ? plan.source_fds[i] : -1;
    TRYC(mount_one(root.get(), plan, spec.mounts[i], source_fd), cat("mounts[", i, "] ", spec.mounts[i].destination));
  }
  if (!dev_is_bind_mounted(spec)) {
    std::vector<oci::Device> devs = default_devices();
    devs.insert(devs.end(), spec.linux_.devices.begin(), spec.linux_.devices.end());
    TRYC(create_devices(root.get(), devs, plan.in_userns), "create devices");
    TRYC(create_dev_symlinks(root.get()), "create /dev links");
  } else {
    TRYC(create_devices(root.get(), spec.linux_.devices, plan.in_userns), "linux.devices");
  }
  return ok();
}
}  // namespace

// True when "/" is the initramfs (rootfs, a ramfs or tmpfs that can never be unmounted).
static bool root_is_initramfs() {
  auto text = read_file("/proc/self/mountinfo");
  if (!text) return false;
  for (const auto& line : split(*text, '\n')) {
    auto f = split(line, ' ');
    if (f.size() > 4 && f[4] == "/") {
      auto dash = line.find(" - ");
      return dash != std::string::npos && starts_with(std::string_view(line).substr(dash + 3), "rootfs ");
    }
  }
  return false;
}

namespace {

// Undoes mountinfo's octal escapes ("\040" for a space).
std::string unescape_mountinfo(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto octal = [&](size_t k) { return s[k] >= '0' && s[k] <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool path_within(const std::string& path, const std::string& dir) {
  return path == dir || (starts_with(path, dir) && (dir == "/" || path[dir.size()] == '/'));
}

// Without pivot_root the host's mounts stay in the container's mount namespace, out of
// sight under the chroot but counted by the kernel: a whole procfs or sysfs among them lets
// a user namespace made in the container mount a fresh, unmasked one. Each is detached
// (or, where it cannot be, covered by a tmpfs), as runc's msMoveRoot does.
Status hide_host_pseudo_filesystems(const std::string& rootfs) {
  auto mountinfo = TRY(open_file("/proc/self/mountinfo", O_RDONLY));
  auto text = TRYC(read_fd_bounded(mountinfo.get(), 16 << 20), "read /proc/self/mountinfo");
  std::vector<std::string> targets;
  for (const auto& line : split(text, '\n')) {
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto f = split(line.substr(0, dash), ' ');
    auto tail = split(line.substr(dash + 3), ' ');
    if (f.size() < 5 || tail.empty()) continue;
    if (f[3] != "/" || (tail[0] != "proc" && tail[0] != "sysfs")) continue;
    std::string point = unescape_mountinfo(f[4]);
    if (!path_within(point, rootfs)) targets.push_back(point);
  }
  for (const auto& p : targets) {
    // The unmount must not propagate to the host.
    if (::mount("", p.c_str(), nullptr, MS_SLAVE | MS_REC, nullptr) < 0) {
      if (errno == ENOENT) continue;  // under a mount already detached
      return Error::from_errno(cat("make ", p, " a slave mount"));
    }
    if (::umount2(p.c_str(), MNT_DETACH) == 0) continue;
    if (errno != EINVAL && errno != EPERM) return Error::from_errno(cat("detach the host's ", p));
    TRYC(sys::mount("tmpfs", p, "tmpfs", 0), cat("cover the host's ", p));
  }
  return ok();
}

}  // namespace

Status enter_rootfs(const std::string& rootfs, bool no_pivot) {
  auto fd = TRY(open_file(rootfs, O_RDONLY | O_DIRECTORY));
  if (::fchdir(fd.get()) < 0) return Error::from_errno(cat("chdir ", rootfs));
  if (no_pivot) {
    TRYC(hide_host_pseudo_filesystems(rootfs), "--no-pivot");
    TRY(sys::mount(rootfs, "/", "", MS_MOVE));
    if (::chroot(".") < 0) return Error::from_errno("chroot");
  } else {
    auto st = sys::pivot_root(".", ".");
    if (!st && st.error().code() == EINVAL && root_is_initramfs()) {
      // pivot_root cannot move away from the initramfs: do what --no-pivot does.
      return enter_rootfs(rootfs, true);
    }
    TRY(std::move(st));
    // The old root is now stacked under "."; detach it without propagating to the host.
    TRY(sys::mount("", ".", "", MS_SLAVE | MS_REC));
    TRY(sys::umount2(".", MNT_DETACH));
  }
  if (::chdir("/") < 0) return Error::from_errno("chdir /");
  return ok();
}

namespace {

// The container's /dev/null, checked to really be the null device and held by fd,
// so a symlink or another file put in its place cannot be bound over masked paths (CVE-2025-31133).
Result<UniqueFd> open_devnull(int rootfd) {
  auto fd = TRY(open_in_root(rootfd, "/dev/null", O_PATH | O_NOFOLLOW));
  struct stat st{};
  if (::fstat(fd.get(), &st) < 0) return Error::from_errno("stat /dev/null");
  if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
    return Error(EPERM, "/dev/null in the container is not the null device");
  return fd;
}

// As runc's reOpenDevNull: stdio that is the null device (engines give a detached
// container /dev/null as stdin; conmon does) is reopened from the container's own
// /dev/null, so that no fd of the init names a mount outside its mount namespace
// (CRIU cannot dump one: "Can't lookup mount ... path=/dev/null").
Status reopen_devnull_stdio() {
  int raw = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (raw < 0) return ok();  // no /dev/null in the container: nothing to reopen from
  UniqueFd null(raw);
  struct stat null_st{};
  if (::fstat(null.get(), &null_st) < 0 || !S_ISCHR(null_st.st_mode) || null_st.st_rdev != makedev(1, 3)) return ok();
  for (int fd = 0; fd < 3; ++fd) {
    struct stat st{};
    if (::fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode) || st.st_rdev != null_st.st_rdev) continue;
    if (::dup3(null.get(), fd, 0) < 0) return Error::from_errno(cat("reopen /dev/null as fd ", fd));
  }
  return ok();
}

}  // namespace

Status finalize_rootfs(const oci::Spec& spec, bool in_userns) {
  TRY(reopen_devnull_stdio());
  if (!spec.linux_.rootfs_propagation.empty())
    TRYC(sys::mount("", "/", "", oci::propagation_from_name(spec.linux_.rootfs_propagation)), "linux.rootfsPropagation");
  auto root = TRY(open_file("/", O_PATH | O_DIRECTORY));
  bool have_proc = false;
  UniqueFd proc;
  if (auto p = open_in_root(root.get(), "/proc", O_RDONLY | O_DIRECTORY)) {
    if (check_procfs(p->get(), "/proc")) {
      have_proc = true;
      proc = std::move(*p);
    }
  }
  for (const auto& [key, value] : spec.linux_.sysctl) {
    if (!have_proc) return Error(ENOENT, cat("linux.sysctl.", key, ": /proc is not mounted in the container"));
    std::string rel = "sys/" + key;
    for (auto& c : rel)
      if (c == '.') c = '/';
    auto fd = open_proc_file(proc.get(), rel, O_WRONLY | O_TRUNC);
    if (!fd) return std::move(fd).error().context(cat("linux.sysctl.", key));
    TRYC(write_all(fd->get(), value), cat("linux.sysctl.", key));
  }
  if ((!spec.linux_.masked_paths.empty() || !spec.linux_.readonly_paths.empty()) && !have_proc)
    return Error(ENOENT, "linux.maskedPaths: /proc must be mounted in the container");
  UniqueFd devnull, mask_dir;
  std::vector<std::string_view> masked;  // a path named twice is masked once (runc)
  for (const auto& p : spec.linux_.masked_paths) {
    if (std::find(masked.begin(), masked.end(), p) != masked.end()) continue;
    masked.push_back(p);
    auto fd = open_in_root(root.get(), p, O_PATH);
    if (!fd) {
      if (fd.error().code() == ENOENT) continue;
      return std::move(fd).error().context(cat("linux.maskedPaths ", p));
    }
    struct stat st{};
    if (::fstat(fd->get(), &st) < 0) return Error::from_errno(cat("stat ", p));
    if (S_ISDIR(st.st_mode)) {
      if (!mask_dir) {
        TRYC(sys::mount("tmpfs", sys::fd_path(fd->get()), "tmpfs", MS_RDONLY, "size=0,nr_inodes=1"), cat("mask ", p));
        mask_dir = TRYC(open_in_root(root.get(), p, O_PATH | O_DIRECTORY), cat("mask ", p));
      } else {
        // The other directories show the same empty read-only tmpfs (one superblock, as runc).
        TRYC(sys::mount(sys::fd_path(mask_dir.get()), sys::fd_path(fd->get()), "", MS_BIND), cat("mask ", p));
        auto mounted = TRYC(open_in_root(root.get(), p, O_PATH | O_DIRECTORY), cat("mask ", p));
        TRYC(sys::mount("", sys::fd_path(mounted.get()), "", MS_BIND | MS_REMOUNT | MS_RDONLY), cat("mask ", p));
      }
    } else {
      if (!devnull) devnull = TRYC(open_devnull(root.get()), cat("mask ", p));
      TRYC(sys::mount(sys::fd_path(devnull.get()), sys::fd_path(fd->get()), "", MS_BIND), cat("mask ", p));
    }
  }
  for (const auto& p : spec.linux_.readonly_paths) {
    auto fd = open_in_root(root.get(), p, O_PATH);
    if (!fd) {
      if (fd.error().code() == ENOENT) continue;
      return std::move(fd).error().context(cat("linux.readonlyPaths ", p));
    }
    TRYC(sys::mount(sys::fd_path(fd->get()), sys::fd_path(fd->get()), "", MS_BIND | MS_REC), cat("readonly ", p));
    auto mounted = TRY(open_in_root(root.get(), p, O_PATH));
    unsigned long keep = locked_flags(p) & ~MS_RDONLY & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    TRYC(sys::mount("", sys::fd_path(mounted.get()), "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | keep),
         cat("readonly ", p));
  }
  if (spec.root_readonly) {
    unsigned long keep = in_userns ? locked_flags("/") & (MS_NOSUID | MS_NODEV | MS_NOEXEC) : 0;
    TRYC(sys::mount("", "/", "", MS_BIND | MS_REMOUNT | MS_RDONLY | keep), "root.readonly");
  }
  return ok();
}

Status remount_readonly_mounts(const oci::Spec& spec) {
  auto root = TRY(open_file("/", O_PATH | O_DIRECTORY));
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const oci::Mount& m = spec.mounts[i];
    if (!delayed_readonly(m) || !(m.parsed.flags & MS_RDONLY)) continue;
    auto mounted = TRYC(open_in_root(root.get(), m.destination, O_PATH), cat("mounts[", i, "] ", m.destination));
    // MS_BIND with MS_REMOUNT changes only the per-mount flags: allowed in a user namespace
    // as long as no locked flag is cleared, which keeping the mount's own flags ensures.
    unsigned long keep = locked_flags(sys::fd_path(mounted.get())) & (MS_NOSUID | MS_NODEV | MS_NOEXEC);
    TRYC(sys::mount("", sys::fd_path(mounted.get()), "", MS_BIND | MS_REMOUNT | MS_RDONLY | keep |
                                                             (m.parsed.flags & kRemountable)),
         cat("mounts[", i, "] ", m.destination, ": make read-only"));
  }
  return ok();
}

}  // namespace vessel::container
