#include "container/foreground.h"

#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "common/unique_fd.h"
#include "container/console.h"

namespace vessel::container {

SignalForwarder::SignalForwarder() {
  sigfillset(&forwarded_);
  for (int s : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) sigdelset(&forwarded_, s);
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  ::sigprocmask(SIG_BLOCK, &forwarded_, &old_);
}

SignalForwarder::~SignalForwarder() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }

Result<int> SignalForwarder::wait(pid_t pid, int master) {
  UniqueFd sfd(::signalfd(-1, &forwarded_, SFD_CLOEXEC));
  if (!sfd) return Error::from_errno("signalfd");
  std::thread relay;
  if (master >= 0) relay = std::thread([master] { relay_console(master); });
  int exit_code = 0;
  bool done = false;
  while (!done) {
    signalfd_siginfo si{};
    if (::read(sfd.get(), &si, sizeof si) != sizeof si) {
      if (errno == EINTR) continue;
      return Error::from_errno("read signalfd");
    }
    int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGCHLD) {
      int status;
      pid_t r;
      while ((r = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (r != pid) continue;  // a reparented orphan of the container
        exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        done = true;
      }
    } else if (sig == SIGWINCH && master >= 0) {
      winsize ws{};
      if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
    } else {
      ::kill(pid, sig);
    }
  }
  if (relay.joinable()) {
    // The process is gone: stop relaying (the master sees EOF once its last user closes).
    ::shutdown(master, SHUT_RDWR);
    relay.join();
  }
  return exit_code;
}

}  // namespace vessel::container
