#include "container/foreground.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "common/scope_exit.h"
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
  // stop: we tell the relay the process is gone; ended: it tells us it returned (and why).
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC));
  UniqueFd ended(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop || !ended) return Error::from_errno("eventfd");
  std::atomic<RelayEnd> relay_end{RelayEnd::kContainerClosed};
  std::thread relay;
  if (master >= 0) {
    relay = std::thread([&, master] {
      relay_end = relay_console(master, stop.get());
      uint64_t one = 1;
      (void)!::write(ended.get(), &one, sizeof one);
    });
  }
  auto stop_relay = [&] {
    if (!relay.joinable()) return;
    uint64_t one = 1;
    (void)!::write(stop.get(), &one, sizeof one);
    relay.join();
  };
  ScopeExit join_relay(stop_relay);  // also on an early error return
  int exit_code = 0;
  bool done = false, killed = false;
  int terminations = 0;  // SIGTERM and SIGINT received
  auto kill_process = [&] {
    if (!killed) ::kill(pid, SIGKILL);
    killed = true;
  };
  while (!done) {
    pollfd p[2] = {{sfd.get(), POLLIN, 0}, {ended.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("poll");
    }
    if (p[1].revents & POLLIN) {
      uint64_t v;
      (void)!::read(ended.get(), &v, sizeof v);
      if (relay_end == RelayEnd::kOutputGone) kill_process();
    }
    if (!(p[0].revents & POLLIN)) continue;
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
    } else if (sig == SIGPIPE) {
      // Our own output is gone (a write of ours to a closed pipe): not the process's business.
      if (master >= 0) kill_process();
    } else if ((sig == SIGTERM || sig == SIGINT) && ++terminations >= 2) {
      kill_process();
    } else {
      ::kill(pid, sig);
    }
  }
  // The process is gone: the relay copies what is left in the pty and returns.
  stop_relay();
  return exit_code;
}

}  // namespace vessel::container
