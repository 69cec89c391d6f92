#include "container/console.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

#include "common/fs.h"
#include "common/strings.h"
#include "container/rootfs_path.h"
#include "sys/syscalls.h"

namespace vessel::container {

Result<UniqueFd> connect_console_socket(const std::string& path, const char* what) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return Error::from_errno("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Error::invalid(cat(what, " ", path, ": path too long"));
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return Error::from_errno(cat("connect to ", what, " ", path));
  return s;
}

Status setup_console(int sock, unsigned rows, unsigned cols, bool mount_console) {
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) return Error::from_errno("open /dev/ptmx");
  int unlock = 0;
  if (::ioctl(master.get(), TIOCSPTLCK, &unlock) < 0) return Error::from_errno("unlockpt");
  UniqueFd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return Error::from_errno("open pty slave");
  if (rows && cols) {
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(rows);
    ws.ws_col = static_cast<unsigned short>(cols);
    ::ioctl(slave.get(), TIOCSWINSZ, &ws);
  }
  if (mount_console) {
    // Bind the slave itself (by fd, not by its /dev/pts path) over /dev/console.
    auto root = TRY(open_file("/", O_PATH | O_DIRECTORY));
    TRY(mkfile_in_root(root.get(), "/dev/console", 0600));
    // The final component must not be a symlink planted to redirect the mount (CVE-2025-52565).
    auto target = TRY(open_in_root(root.get(), "/dev/console", O_PATH | O_NOFOLLOW));
    struct stat st{};
    if (::fstat(target.get(), &st) < 0) return Error::from_errno("stat /dev/console");
    if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))
      return Error(EPERM, "/dev/console in the container is not a regular file or device (refusing to mount over it)");
    TRYC(sys::mount(sys::fd_path(slave.get()), sys::fd_path(target.get()), "", MS_BIND), "/dev/console");
  }
  TRYC(sys::send_fd(sock, master.get(), "console"), "send the pty master to --console-socket");
  if (::setsid() < 0) return Error::from_errno("setsid");
  if (::ioctl(slave.get(), TIOCSCTTY, 0) < 0) return Error::from_errno("set controlling terminal");
  for (int fd = 0; fd < 3; ++fd)
    if (::dup2(slave.get(), fd) < 0) return Error::from_errno("dup2 pty slave");
  return ok();
}

namespace {

// Copies what the master has now to stdout, without blocking on the master.
RelayEnd drain_master(int master, char* buf, size_t size) {
  while (true) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) return RelayEnd::kStopped;
    ssize_t n = ::read(master, buf, size);
    if (n <= 0) return RelayEnd::kStopped;
    if (!write_all(1, std::string_view(buf, static_cast<size_t>(n)))) return RelayEnd::kOutputGone;
  }
}

}  // namespace

void clear_onlcr(int master) {
  termios t{};
  if (::tcgetattr(master, &t) != 0) return;
  t.c_oflag &= ~ONLCR;
  (void)::tcsetattr(master, TCSANOW, &t);
}

RelayEnd relay_console(int master, int stop_fd) {
  termios saved{};
  bool raw = ::isatty(0) && ::tcgetattr(0, &saved) == 0;
  if (raw) {
    termios t = saved;
    ::cfmakeraw(&t);
    ::tcsetattr(0, TCSANOW, &t);
    winsize ws{};
    if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
  }
  char buf[8192];
  bool stdin_open = true;
  bool watch_stdout = true;  // false when fd 1 is not open at all (POLLNVAL)
  RelayEnd end = RelayEnd::kContainerClosed;
  while (true) {
    // stdout with no events: poll still reports POLLERR once a pipe's reader is gone
    // (POLLHUP for a hung-up terminal), even while the container writes nothing.
    pollfd p[4] = {{master, POLLIN, 0},
                   {0, static_cast<short>(stdin_open ? POLLIN : 0), 0},
                   {watch_stdout ? 1 : -1, 0, 0},
                   {stop_fd, POLLIN, 0}};
    if (::poll(p, 4, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[3].revents & POLLIN) {
      end = drain_master(master, buf, sizeof buf);
      break;
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EIO: every slave fd is closed
      if (!write_all(1, std::string_view(buf, static_cast<size_t>(n)))) {
        end = RelayEnd::kOutputGone;
        break;
      }
    }
    if (p[2].revents & POLLNVAL) watch_stdout = false;
    if (p[2].revents & (POLLERR | POLLHUP)) {
      end = RelayEnd::kOutputGone;
      break;
    }
    if (stdin_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        stdin_open = false;
        char eof = 4;  // ^D: end of input for the process reading the pty
        (void)!::write(master, &eof, 1);
      } else {
        (void)write_all(master, std::string_view(buf, static_cast<size_t>(n)));
      }
    }
  }
  if (raw) ::tcsetattr(0, TCSANOW, &saved);
  return end;
}

}  // namespace vessel::container
