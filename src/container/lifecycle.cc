// start, kill, delete and state of an existing container.
#include "container/lifecycle.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>

#include "cgroups/manager.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "container/hooks.h"
#include "oci/spec.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

bool cgroup_frozen(const State& s) {
  if (s.cgroup.empty()) return false;
  auto m = cgroups::Manager::load(s.cgroup);
  if (!m) return false;
  auto f = (*m)->frozen();
  return f && *f;
}

ContainerStatus status_of(const State& s, const ContainerDir& dir) {
  return live_status(s, dir.path(), cgroup_frozen(s));
}

// Signals the init through a pidfd after checking it is still the same process.
Status signal_init(const State& s, int sig) {
  auto pidfd = sys::pidfd_open(s.pid);
  if (!pidfd) return Error(ESRCH, "container not running (its init has exited)");
  if (!process_alive(s.pid, s.pid_start_time)) return Error(ESRCH, "container not running (its init has exited)");
  return sys::pidfd_send_signal(pidfd->get(), sig);
}

bool wait_gone(const State& s, int timeout_ms) {
  auto pidfd = sys::pidfd_open(s.pid);
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    if (!process_alive(s.pid, s.pid_start_time)) return true;
    if (pidfd) {
      pollfd p{pidfd->get(), POLLIN, 0};
      ::poll(&p, 1, 10);
    } else {
      ::usleep(10000);
    }
  }
  return !process_alive(s.pid, s.pid_start_time);
}

}  // namespace

Result<int> parse_signal(const std::string& text) {
  if (auto n = parse_u64(text)) {
    if (*n == 0 || *n > 64) return Error::invalid(cat("signal ", text, ": out of range"));
    return static_cast<int>(*n);
  }
  std::string name = text;
  for (auto& c : name) c = static_cast<char>(::toupper(static_cast<unsigned char>(c)));
  if (starts_with(name, "SIG")) name = name.substr(3);
  for (int sig = 1; sig < NSIG; ++sig) {
    const char* abbrev = ::sigabbrev_np(sig);
    if (abbrev && name == abbrev) return sig;
  }
  if (starts_with(name, "RTMIN+") || starts_with(name, "RTMAX-")) {
    if (auto off = parse_u64(name.substr(6))) {
      int sig = name[2] == 'M' && name[3] == 'I' ? SIGRTMIN + static_cast<int>(*off) : SIGRTMAX - static_cast<int>(*off);
      if (sig >= SIGRTMIN && sig <= SIGRTMAX) return sig;
    }
  }
  return Error::invalid(cat("unknown signal \"", text, "\""));
}

Result<State> load_state(const std::string& root, const std::string& id, ContainerStatus* status) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto s = TRY(dir.load());
  if (status) *status = status_of(s, dir);
  return s;
}

Status start(const std::string& root, const std::string& id) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto s = TRY(dir.load());
  ContainerStatus st = status_of(s, dir);
  if (st != ContainerStatus::kCreated)
    return Error::invalid(cat("cannot start container \"", id, "\": it is ", status_name(st), ", not created"));
  // Non-blocking open succeeds without a writer; the init holds its end open already or soon.
  auto fifo = TRY(open_file(dir.fifo_path(), O_RDONLY | O_NONBLOCK));
  auto pidfd = sys::pidfd_open(s.pid);
  char byte = 0;
  while (true) {
    pollfd p[2] = {{fifo.get(), POLLIN, 0}, {pidfd ? pidfd->get() : -1, POLLIN, 0}};
    int n = ::poll(p, 2, 1000);
    if (n < 0 && errno != EINTR) return Error::from_errno("poll exec fifo");
    if (p[0].revents & POLLIN) {
      if (::read(fifo.get(), &byte, 1) == 1) break;
    }
    if ((p[1].revents & POLLIN) || !process_alive(s.pid, s.pid_start_time))
      return Error(ESRCH, cat("cannot start container \"", id, "\": its init exited"));
  }
  ::unlink(dir.fifo_path().c_str());
  auto spec = oci::load_spec(dir.path());
  if (spec && !spec->hooks.poststart.empty()) {
    auto hs = run_hooks(spec->hooks.poststart, state_json(s, ContainerStatus::kRunning, false), "poststart");
    if (!hs) log::warn("start", hs.error().message());
  }
  return ok();
}

Status kill(const std::string& root, const std::string& id, int sig, bool all) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto s = TRY(dir.load());
  ContainerStatus st = status_of(s, dir);
  if (st == ContainerStatus::kStopped && !all)
    return Error(ESRCH, cat("cannot signal container \"", id, "\": container not running"));
  if (all) {
    auto cg = TRY(cgroups::Manager::load(s.cgroup));
    return cg->kill_all(sig);
  }
  return signal_init(s, sig);
}

Status remove(const std::string& root, const std::string& id, bool force) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto s = TRY(dir.load());
  ContainerStatus st = status_of(s, dir);
  std::unique_ptr<cgroups::Manager> cg;
  if (!s.cgroup.empty()) {
    if (auto m = cgroups::Manager::load(s.cgroup)) cg = std::move(*m);
  }
  if (st != ContainerStatus::kStopped) {
    if (!force)
      return Error::invalid(cat("cannot delete container \"", id, "\" that is not stopped: ", status_name(st)));
    if (cg && (!s.own_pid_ns || st == ContainerStatus::kPaused)) (void)cg->kill_all(SIGKILL);
    (void)signal_init(s, SIGKILL);
    if (!wait_gone(s, 10000)) return Error(EBUSY, cat("container \"", id, "\": init did not die after SIGKILL"));
  }
  if (cg) {
    // Processes that left the pid namespace's reach (host pid ns) must go before the cgroup can.
    if (auto pids = cg->pids(); pids && !pids->empty()) {
      (void)cg->kill_all(SIGKILL);
      for (int i = 0; i < 100; ++i) {
        auto left = cg->pids();
        if (!left || left->empty()) break;
        ::usleep(10000);
      }
    }
  }
  auto spec = oci::load_spec(dir.path());
  if (spec && !spec->hooks.poststop.empty()) {
    auto hs = run_hooks(spec->hooks.poststop, state_json(s, ContainerStatus::kStopped, false), "poststop");
    if (!hs) log::warn("delete", hs.error().message());
  }
  if (cg) TRYC(cg->destroy(), "remove cgroups");
  return dir.remove();
}

}  // namespace vessel::container
