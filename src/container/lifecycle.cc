// start, kill, delete and state of an existing container.
#include "container/lifecycle.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "cgroups/manager.h"
#include "common/crash_point.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "container/hooks.h"
#include "container/rootfs.h"
#include "oci/spec.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

bool cgroup_frozen(const State& s) {
  if (s.cgroup.empty() || s.creating) return false;
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

// The inode of a process's pid namespace; 0 when it is gone.
ino_t pid_ns_of(pid_t pid) {
  struct stat st{};
  if (::stat(cat("/proc/", pid, "/ns/pid").c_str(), &st) < 0) return 0;
  return st.st_ino;
}

// Signals every process of the container. Its own cgroup (vessel created it) holds
// exactly its processes; in a cgroup vessel did not create, only those in the
// init's pid namespace are the container's (with the host's pid namespace, only the init).
Status signal_all(const State& s, cgroups::Manager* cg, int sig) {
  if (cg && cg->owned()) return cg->kill_all(sig);
  if (!s.own_pid_ns || !cg) return signal_init(s, sig);
  ino_t ns = pid_ns_of(s.pid);
  auto pids = TRY(cg->pids());
  for (pid_t pid : pids) {
    if (ns != 0 && pid_ns_of(pid) == ns) (void)::kill(pid, sig);
  }
  return ok();
}

// Waits up to `timeout_ms` for the container's own cgroup to hold no process.
bool wait_cgroup_empty(cgroups::Manager& cg, int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 10) {
    auto left = cg.pids();
    if (!left || left->empty()) return true;
    ::usleep(10000);
  }
  return false;
}

}  // namespace

Result<int> parse_signal(const std::string& text) {
  if (auto n = parse_u64(text)) {
    // 0 checks that the container's processes exist, as kill(2) and runc take it.
    if (*n > 64) return Error::invalid(cat("signal ", text, ": out of range"));
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
  bool busy = false;  // a create (or another command) holds the lock
  auto s = TRY(ContainerDir::peek(root, id, &busy));
  if (status) *status = live_status(s, path_join(root, id), cgroup_frozen(s), busy);
  return s;
}

// Reads the exec fifo (non-blocking) until the init's end is closed (execve or exit); returns what was written.
static Result<std::string> read_until_exec(int fd) {
  std::string out;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("poll exec fifo");
    }
    char buf[4096];
    ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r < 0) return Error::from_errno("read exec fifo");
    if (r == 0) return out;
    if (out.size() < 8192) out.append(buf, static_cast<size_t>(r));
  }
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
  // The init keeps its end open until execve closes it; what it writes before is why it failed.
  std::string failure = TRY(read_until_exec(fifo.get()));
  if (!failure.empty()) return Error(EIO, cat("cannot start container \"", id, "\": ", failure));
  auto spec = oci::load_spec(dir.path());
  if (spec && !spec->hooks.poststart.empty())
    run_hooks_logged(spec->hooks.poststart, state_json(s, ContainerStatus::kRunning, false), "poststart",
                     path_exists(s.bundle) ? s.bundle : "", "start");
  return ok();
}

Status kill(const std::string& root, const std::string& id, int sig, bool all) {
  auto dir = TRY(ContainerDir::open(root, id));
  auto s = TRY(dir.load());
  ContainerStatus st = status_of(s, dir);
  // As runc (1.2 on): SIGKILL to a container in the host's pid namespace goes to every
  // process of its cgroup (when vessel created it), also after its init has gone: killing
  // only the init would leave the others running.
  if (sig == SIGKILL && !s.own_pid_ns && !s.cgroup.empty()) {
    auto cg = TRY(cgroups::Manager::load(s.cgroup));
    if (cg->owned()) return signal_all(s, cg.get(), sig);
  }
  if (st == ContainerStatus::kStopped && !all)
    return Error(ESRCH, cat("cannot signal container \"", id, "\": container not running"));
  if (all) {
    if (s.cgroup.empty()) return signal_init(s, sig);
    auto cg = TRY(cgroups::Manager::load(s.cgroup));
    // Signal 0 only asks whether the processes exist: no freeze and thaw for it. As runc,
    // --all with 0 succeeds on a stopped container (it has no process to fail on).
    if (sig == 0) return ok();
    return signal_all(s, cg.get(), sig);
  }
  return signal_init(s, sig);
}

Status remove(const std::string& root, const std::string& id, bool force) {
  auto opened = ContainerDir::open(root, id);
  if (!opened) {
    // A create killed before its directory got its name leaves it aside; a delete
    // killed after the lock went leaves the directory empty (rmdir takes only an empty one).
    if (opened.error().code() == ENOENT) {
      (void)ContainerDir::remove_stale(root, id);
      (void)::rmdir(path_join(root, id).c_str());
    }
    return std::move(opened).error();
  }
  ContainerDir dir = std::move(*opened);
  auto loaded = dir.load();
  if (!loaded) {
    if (!force) return std::move(loaded).error().context(cat("container \"", id, "\" (delete --force removes it)"));
    log::warn("delete", loaded.error().message());
    return dir.remove();
  }
  State s = std::move(*loaded);
  // We hold the lock: a state still `creating` is a create that died half-way (stopped).
  ContainerStatus st = status_of(s, dir);
  // As runc: a `created` container (its init waiting for start) is deleted without --force.
  if (st != ContainerStatus::kStopped && st != ContainerStatus::kCreated && !force)
    return Error::invalid(cat("cannot delete container \"", id, "\" that is not stopped: ", status_name(st)));
  std::unique_ptr<cgroups::Manager> cg;
  if (!s.cgroup.empty()) {
    if (auto m = cgroups::Manager::load(s.cgroup)) cg = std::move(*m);
  }
  bool own_cgroup = cg && cg->owned();
  // The init of a create that died half-way may live on (blocked on exec.fifo): it goes too.
  if (process_alive(s.pid, s.pid_start_time)) {
    // A v1 freezer holds even SIGKILL: thaw what pause froze.
    if (cg && st == ContainerStatus::kPaused) (void)cg->thaw();
    // With its own pid namespace, killing the init kills every process of the container;
    // in the host's, the others are found through its cgroup, when vessel created it.
    if (own_cgroup && !s.own_pid_ns) (void)cg->kill_all(SIGKILL);
    (void)signal_init(s, SIGKILL);
    crash_point("delete:killed");
    if (!wait_gone(s, 10000)) return Error(EBUSY, cat("container \"", id, "\": init did not die after SIGKILL"));
  }
  if (own_cgroup) {
    // Processes the init left behind (host pid namespace) must go before the cgroup can;
    // a pid namespace is torn down by the kernel, which takes a moment.
    if (!s.own_pid_ns) (void)cg->kill_all(SIGKILL);
    if (!wait_cgroup_empty(*cg, 1000) && !s.own_pid_ns) {
      (void)cg->kill_all(SIGKILL);
      (void)wait_cgroup_empty(*cg, 1000);
    }
  } else if (cg && !s.own_pid_ns && s.pid > 0) {
    log::warn("delete", cat("container \"", id, "\": its cgroup was not created by vessel; processes other than its init were left alone"));
  }
  // Without a mount namespace: the config's mounts, made in ours under the rootfs bind.
  if (s.host_mount_id) {
    if (auto ds = detach_host_rootfs_tree(s.rootfs, s.host_mount_id); !ds)
      log::warn("delete", cat("container \"", id, "\": ", ds.error().message()));
    crash_point("delete:host-mount-detached");
  }
  // The config copy is written when create reaches its hooks: poststop runs from then on.
  if (path_exists(dir.path() + "/config.json")) {
    auto spec = oci::load_spec(dir.path());
    // Every poststop hook runs, a failing one only logged (runtime-spec; runc 1.1 stops at the first).
    if (spec && !spec->hooks.poststop.empty())
      run_hooks_logged(spec->hooks.poststop, state_json(s, ContainerStatus::kStopped, false), "poststop",
                       path_exists(s.bundle) ? s.bundle : "", "delete");
  }
  if (cg) {
    // Only what vessel created goes; one it cannot remove (a process that is not the
    // container's moved in) is reported and left, as runc does.
    if (auto ds = cg->destroy(); !ds) log::warn("delete", cat("container \"", id, "\": ", ds.error().message()));
  }
  crash_point("delete:cgroup-removed");
  return dir.remove();
}

}  // namespace vessel::container
