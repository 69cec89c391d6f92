#include "sys/syscalls.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::sys {

Result<UniqueFd> open_namespace(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(cat("open ", path));
  UniqueFd out(fd);
  struct statfs sf{};
  constexpr long kNsfsMagic = 0x6e736673;
  if (::fstatfs(fd, &sf) < 0) return Error::from_errno(cat("statfs ", path));
  if (sf.f_type != kNsfsMagic) return Error::invalid(cat(path, ": not a namespace file"));
  return out;
}

Status mount(const std::string& source, const std::string& target, const std::string& fstype, unsigned long flags,
             const std::string& data) {
  if (::mount(source.empty() ? nullptr : source.c_str(), target.c_str(), fstype.empty() ? nullptr : fstype.c_str(),
              flags, data.empty() ? nullptr : data.c_str()) < 0)
    return Error::from_errno(cat("mount ", source.empty() ? fstype : source, " on ", target));
  return ok();
}

Status umount2(const std::string& target, int flags) {
  if (::umount2(target.c_str(), flags) < 0) return Error::from_errno(cat("umount ", target));
  return ok();
}

Status pivot_root(const std::string& new_root, const std::string& put_old) {
  if (::syscall(SYS_pivot_root, new_root.c_str(), put_old.c_str()) < 0)
    return Error::from_errno(cat("pivot_root ", new_root));
  return ok();
}

Result<UniqueFd> openat2(int dirfd, const std::string& path, uint64_t flags, uint64_t mode, uint64_t resolve) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = resolve;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
  } while (fd < 0 && errno == EAGAIN);
  if (fd < 0) return Error::from_errno(cat("open ", path));
  return UniqueFd(static_cast<int>(fd));
}

std::string fd_path(int fd) { return cat("/proc/self/fd/", fd); }

pid_t clone_fork(unsigned long flags) {
  return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

Result<UniqueFd> pidfd_open(pid_t pid) {
  long fd = ::syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return Error::from_errno(cat("pidfd_open ", pid));
  return UniqueFd(static_cast<int>(fd));
}

Status pidfd_send_signal(int pidfd, int sig) {
  if (::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0) return Error::from_errno("pidfd_send_signal");
  return ok();
}

Result<CapState> capget() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) < 0) return Error::from_errno("capget");
  CapState s;
  s.effective = data[0].effective | (uint64_t(data[1].effective) << 32);
  s.permitted = data[0].permitted | (uint64_t(data[1].permitted) << 32);
  s.inheritable = data[0].inheritable | (uint64_t(data[1].inheritable) << 32);
  return s;
}

Status capset(const CapState& caps) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  data[0].effective = static_cast<uint32_t>(caps.effective);
  data[1].effective = static_cast<uint32_t>(caps.effective >> 32);
  data[0].permitted = static_cast<uint32_t>(caps.permitted);
  data[1].permitted = static_cast<uint32_t>(caps.permitted >> 32);
  data[0].inheritable = static_cast<uint32_t>(caps.inheritable);
  data[1].inheritable = static_cast<uint32_t>(caps.inheritable >> 32);
  if (::syscall(SYS_capset, &hdr, data) < 0) return Error::from_errno("capset");
  return ok();
}

int cap_last_cap() {
  static int last = [] {
    auto t = read_file("/proc/sys/kernel/cap_last_cap");
    if (!t) return 40;
    return static_cast<int>(parse_u64(trim(*t)).value_or(40));
  }();
  return last;
}

Status send_message(int sock, std::string_view data, int fd) {
  iovec iov{const_cast<char*>(data.data()), data.size()};
  char cbuf[CMSG_SPACE(sizeof(int))]{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (fd >= 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::from_errno("sendmsg");
  return ok();
}

Result<size_t> recv_message(int sock, char* buf, size_t size, UniqueFd* fd) {
  iovec iov{buf, size};
  char cbuf[CMSG_SPACE(sizeof(int))]{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::from_errno("recvmsg");
  if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
    int received;
    std::memcpy(&received, CMSG_DATA(c), sizeof(int));
    if (fd) fd->reset(received);
    else ::close(received);
  }
  return static_cast<size_t>(n);
}

Status send_fd(int sock, int fd, const std::string& payload) {
  return send_message(sock, payload.empty() ? std::string_view("\0", 1) : std::string_view(payload), fd);
}

Result<UniqueFd> recv_fd(int sock, std::string* payload) {
  char buf[4096];
  UniqueFd fd;
  size_t n = TRY(recv_message(sock, buf, sizeof buf, &fd));
  if (!fd) return Error(EBADMSG, "recvmsg: no file descriptor received");
  if (payload) payload->assign(buf, n);
  return fd;
}

namespace {

// Calls fn(fd) for every open fd >= first, read from /proc/self/fd without allocating
// (this runs in forked children); false when /proc/self/fd could not be read.
template <typename Fn>
bool for_each_open_fd(int first, Fn fn) {
  int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  alignas(8) char buf[4096];
  long n;
  while ((n = ::syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      // linux_dirent64: u64 ino, s64 off, u16 reclen, u8 type, then the name.
      unsigned short reclen = 0;
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);
      const char* name = buf + off + 19;
      int fd = 0;
      bool number = name[0] != '\0';
      for (const char* c = name; *c; ++c) {
        if (*c < '0' || *c > '9') number = false;
        else fd = fd * 10 + (*c - '0');
      }
      if (number && fd >= first && fd != dir) fn(fd);
      if (reclen == 0) break;
      off += reclen;
    }
  }
  ::close(dir);
  return n == 0;
}

// Calls fn(fd) for every fd number from `first` up to RLIMIT_NOFILE (at most 2^20).
template <typename Fn>
void for_each_fd_number(int first, Fn fn) {
  rlimit rl{};
  int limit = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20) ? static_cast<int>(rl.rlim_cur) : (1 << 20);
  for (int fd = first; fd < limit; ++fd) fn(fd);
}

}  // namespace

void cloexec_from(int first) {
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
  if (::syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
  auto mark = [](int fd) {
    int fl = ::fcntl(fd, F_GETFD);
    if (fl >= 0) ::fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
  };
  if (!for_each_open_fd(first, mark)) for_each_fd_number(first, mark);
}

void close_from_except(int first, std::span<const int> keep) {
  // close_range over the gaps between the kept fds, lowest first.
  auto by_ranges = [&] {
    for (int from = first;;) {
      int next = -1;  // the lowest kept fd >= from
      for (int fd : keep)
        if (fd >= from && (next < 0 || fd < next)) next = fd;
      if (next < 0) return ::syscall(SYS_close_range, from, ~0U, 0) == 0;
      if (next > from && ::syscall(SYS_close_range, from, next - 1, 0) != 0) return false;
      from = next + 1;
    }
  };
  if (by_ranges()) return;
  auto close_unkept = [&](int fd) {
    if (std::find(keep.begin(), keep.end(), fd) == keep.end()) ::close(fd);
  };
  if (!for_each_open_fd(first, close_unkept)) for_each_fd_number(first, close_unkept);
}

}  // namespace vessel::sys
