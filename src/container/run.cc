#include "container/run.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "common/strings.h"
#include "container/console.h"
#include "oci/spec.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

// Signals a foreground run passes on to the container instead of acting on them.
sigset_t forwarded_signals() {
  sigset_t set;
  sigfillset(&set);
  for (int s : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS}) sigdelset(&set, s);
  return set;
}

}  // namespace

Result<int> run(CreateOptions o, bool detach) {
  bool terminal = false;
  if (auto spec = oci::load_spec(o.bundle.empty() ? "." : o.bundle); spec && spec->process)
    terminal = spec->process->terminal;
  UniqueFd console_ours, console_theirs;
  if (terminal && o.console_socket.empty()) {
    if (detach) return Error::invalid("process.terminal is true: --detach needs --console-socket");
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return Error::from_errno("socketpair");
    console_ours.reset(sv[0]);
    console_theirs.reset(sv[1]);
    o.console_fd = console_theirs.get();
  }

  sigset_t fwd = forwarded_signals(), old;
  if (!detach) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    ::sigprocmask(SIG_BLOCK, &fwd, &old);
  }
  auto pid = create(o);
  if (!pid) return std::move(pid).error().context(cat("run ", o.id));
  console_theirs.reset();
  UniqueFd master;
  if (console_ours) {
    auto m = sys::recv_fd(console_ours.get());
    if (!m) {
      (void)remove(o.root, o.id, true);
      return std::move(m).error().context("receive the container's pty");
    }
    master = std::move(*m);
  }
  if (auto st = start(o.root, o.id); !st) {
    (void)remove(o.root, o.id, true);
    return std::move(st).error();
  }
  if (detach) return 0;

  UniqueFd sfd(::signalfd(-1, &fwd, SFD_CLOEXEC));
  if (!sfd) return Error::from_errno("signalfd");
  std::thread relay;
  if (master) relay = std::thread([m = master.get()] { relay_console(m); });

  int exit_code = 0;
  while (true) {
    signalfd_siginfo si{};
    if (::read(sfd.get(), &si, sizeof si) != sizeof si) {
      if (errno == EINTR) continue;
      break;
    }
    int sig = static_cast<int>(si.ssi_signo);
    if (sig == SIGCHLD) {
      bool done = false;
      int status;
      pid_t r;
      while ((r = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (r != *pid) continue;
        exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        done = true;
      }
      if (done) break;
    } else if (sig == SIGWINCH && master) {
      winsize ws{};
      if (::ioctl(0, TIOCGWINSZ, &ws) == 0) ::ioctl(master.get(), TIOCSWINSZ, &ws);
    } else {
      ::kill(*pid, sig);
    }
  }
  if (relay.joinable()) {
    // Let the relay drain what the process wrote last, then stop it by closing the master.
    ::shutdown(master.get(), SHUT_RDWR);
    relay.join();
  }
  (void)remove(o.root, o.id, true);
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  return exit_code;
}

}  // namespace vessel::container
