#include "container/exec.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <optional>

#include "cgroups/manager.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "container/console.h"
#include "container/foreground.h"
#include "container/process_setup.h"
#include "container/state.h"
#include "container/sync.h"
#include "oci/capabilities.h"
#include "oci/spec.h"
#include "oci/validate.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

// The namespaces of `pid` that differ from ours, as CLONE_NEW* flags.
int namespaces_to_join(pid_t pid) {
  struct Ns {
    const char* name;
    int flag;
  };
  static constexpr Ns kAll[] = {{"user", CLONE_NEWUSER}, {"mnt", CLONE_NEWNS},     {"pid", CLONE_NEWPID},
                                {"net", CLONE_NEWNET},   {"ipc", CLONE_NEWIPC},    {"uts", CLONE_NEWUTS},
                                {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME}};
  int flags = 0;
  for (const auto& ns : kAll) {
    struct stat ours{}, theirs{};
    if (::stat(cat("/proc/self/ns/", ns.name).c_str(), &ours) < 0) continue;
    if (::stat(cat("/proc/", pid, "/ns/", ns.name).c_str(), &theirs) < 0) continue;
    if (ours.st_ino != theirs.st_ino || ours.st_dev != theirs.st_dev) flags |= ns.flag;
  }
  return flags;
}

Result<oci::Process> build_process(const ExecOptions& o, const std::string& state_dir) {
  if (!o.process_file.empty()) {
    auto text = TRYC(read_file_or_pipe(o.process_file), "--process");
    auto j = TRYC(oci::parse_json(text, o.process_file), "--process");
    return oci::parse_process(j, "process").context(cat("--process ", o.process_file));
  }
  if (o.args.empty()) return Error::invalid("exec: give the command to run (or --process FILE)");
  // Like runc, the container's own process is the base: its env, user, capabilities, rlimits.
  auto spec = TRY(oci::load_spec(state_dir));
  oci::Process p = spec.process ? *spec.process : oci::Process{};
  p.args = o.args;
  p.terminal = o.tty.value_or(false);
  if (!o.cwd.empty()) p.cwd = o.cwd;
  for (const auto& kv : o.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Error::invalid(cat("--env ", kv, ": expected KEY=VALUE"));
    std::string key = kv.substr(0, eq + 1);
    std::erase_if(p.env, [&](const std::string& e) { return starts_with(e, key); });
    p.env.push_back(kv);
  }
  if (!o.user.empty()) {
    auto parts = split(o.user, ':');
    auto uid = parse_u64(parts[0]);
    if (!uid || parts.size() > 2) return Error::invalid(cat("--user ", o.user, ": expected UID[:GID]"));
    TRY(oci::check_id(*uid, cat("--user ", o.user, ": uid")));
    p.user.uid = static_cast<uint32_t>(*uid);
    if (parts.size() == 2) {
      auto gid = parse_u64(parts[1]);
      if (!gid) return Error::invalid(cat("--user ", o.user, ": expected UID[:GID]"));
      TRY(oci::check_id(*gid, cat("--user ", o.user, ": gid")));
      p.user.gid = static_cast<uint32_t>(*gid);
    }
  }
  if (!o.additional_gids.empty()) p.user.additional_gids = o.additional_gids;
  for (auto g : o.additional_gids) TRY(oci::check_id(g, "--additional-gids"));
  if (!o.caps.empty()) {
    oci::CapabilitySets s = p.capabilities.value_or(oci::CapabilitySets{});
    for (const auto& name : o.caps) {
      auto n = oci::capability_from_name(name);
      if (!n) {
        log::warn("exec", cat("--cap ", name, ": ignoring unknown capability"));  // as runc
        continue;
      }
      // As runc since CVE-2022-29162: bounding, effective and permitted; never inheritable.
      // Ambient too when the config has inheritable capabilities (runc 1.2 on): it is
      // raised only for one that is also inheritable, as the kernel requires.
      uint64_t bit = 1ULL << *n;
      s.bounding |= bit;
      s.effective |= bit;
      s.permitted |= bit;
      if (s.inheritable) s.ambient |= bit;
    }
    p.capabilities = s;
  }
  if (o.no_new_privs) p.no_new_privileges = true;
  return p;
}

// --cgroup [CONTROLLER[,CONTROLLER...]:]PATH, as runc: controller (or "" for every
// hierarchy) -> a sub-cgroup path below the container's.
Result<std::map<std::string, std::string>> parse_sub_cgroups(const std::vector<std::string>& flags) {
  std::map<std::string, std::string> out;
  for (const auto& f : flags) {
    auto colon = f.find(':');
    std::string path = colon == std::string::npos ? f : f.substr(colon + 1);
    std::vector<std::string> controllers = {""};
    if (colon != std::string::npos) controllers = split(f.substr(0, colon), ',');
    bool bad = path.empty() || path[0] == '/';
    for (const auto& part : split(path, '/'))
      if (part == "..") bad = true;
    if (bad) return Error::invalid(cat("--cgroup ", f, ": ", path, " is not a sub cgroup path"));
    for (const auto& c : controllers) {
      if (colon != std::string::npos && c.empty()) return Error::invalid(cat("--cgroup ", f, ": empty controller name"));
      out[c] = path;
    }
  }
  return out;
}

// Moves `pid` into the sub-cgroups of --cgroup (they must exist, as with runc).
Status enter_sub_cgroups(cgroups::Manager& cg, const std::map<std::string, std::string>& subs, pid_t pid) {
  std::map<std::string, bool> seen;
  for (const auto& m : cg.mounts()) {
    std::vector<std::string> names = m.fstype == "cgroup2" ? std::vector<std::string>{} : split(m.options, ',');
    const std::string* sub = nullptr;
    for (const auto& n : names) {
      if (auto it = subs.find(n); it != subs.end()) {
        sub = &it->second;
        seen[n] = true;
      }
    }
    if (!sub) {
      if (auto it = subs.find(""); it != subs.end()) sub = &it->second;
    }
    if (!sub) continue;
    std::string dir = path_join(path_join(m.mountpoint, m.path), *sub);
    TRYC(write_file(path_join(dir, "cgroup.procs"), std::to_string(pid), O_TRUNC), cat("--cgroup: join ", dir));
  }
  for (const auto& [c, path] : subs)
    if (!c.empty() && !seen[c]) return Error::invalid(cat("--cgroup ", c, ":", path, ": unknown controller ", c));
  return ok();
}

// In the forked child: become the process. Errors go over `sync`; success is its close-on-exec.
// `root_fd`: the init's root, when the container shares our mount namespace (its root a chroot).
[[noreturn]] void exec_child(SyncSocket& sync, int pidfd, int flags, int root_fd, const oci::Process& p,
                             const std::optional<SeccompProgram>& seccomp, int console_fd, int preserve_fds) {
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  auto fail = [&](Error e) {
    (void)sync.send_error(e);
    ::_exit(126);
  };
  if (!sync.expect(SyncMsg::kGo)) ::_exit(126);
  if (flags && ::setns(pidfd, flags) < 0) fail(Error::from_errno("join the container's namespaces"));
  if (root_fd >= 0 && (::fchdir(root_fd) < 0 || ::chroot(".") < 0))
    fail(Error::from_errno("enter the container's root (it has no mount namespace: a chroot)"));
  if (auto st = enter_cwd(p.cwd); !st) fail(std::move(st).error());
  if (p.terminal) {
    if (auto st = setup_console(console_fd, p.console_height, p.console_width, false); !st)
      fail(std::move(st).error().context("console"));
  }
  if (auto st = apply_rlimits(p.rlimits); !st) fail(std::move(st).error());
  auto path = find_executable(p);
  if (!path) fail(std::move(path).error());
  if (p.user.umask) ::umask(*p.user.umask);
  // The process must outlive a detached `exec`.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  if (seccomp && seccomp->notify) {
    // As the init does: the filter goes on now, and its listener fd to the agent through
    // our parent; the rest of our own calls are filtered (and answered) from here on.
    auto listener = load_seccomp(*seccomp);
    if (!listener) fail(std::move(listener).error().context("linux.seccomp"));
    if (auto st = sync.send_fd(SyncMsg::kSeccompFd, listener->get()); !st) fail(std::move(st).error());
    listener->reset();
    fail(finish_process(*path, p, std::nullopt, preserve_fds));
  }
  fail(finish_process(*path, p, seccomp, preserve_fds));
  ::_exit(126);
}

// Sends an exec'd process's seccomp listener fd to the profile's agent, as create does for
// the init: the container's state (running) and the new process's pid.
Status send_listener_fd(const oci::Seccomp& sc, int fd, const State& state, pid_t pid) {
  auto sock = TRY(connect_console_socket(sc.listener_path));
  oci::Json st = oci::Json::parse(state_json(state, ContainerStatus::kRunning, false));
  oci::Json msg = {{"ociVersion", state.oci_version}, {"fds", {"seccompFd"}}, {"pid", pid},
                   {"metadata", sc.listener_metadata}, {"state", st}};
  return sys::send_fd(sock.get(), fd, msg.dump());
}

}  // namespace

Result<int> exec(const ExecOptions& o) {
  TRY(check_preserve_fds(o.preserve_fds));
  State state;
  std::string dir_path;
  ContainerStatus status;
  {
    auto dir = TRY(ContainerDir::open(o.root, o.id));
    state = TRY(dir.load());
    dir_path = dir.path();
    bool frozen = false;
    if (auto cg = cgroups::Manager::load(state.cgroup)) {
      if (auto f = (*cg)->frozen()) frozen = *f;
    }
    status = live_status(state, dir_path, frozen);
  }
  if (status == ContainerStatus::kStopped) return Error::invalid(cat("cannot exec in container \"", o.id, "\": it is stopped"));
  if (status == ContainerStatus::kPaused && !o.ignore_paused)
    return Error::invalid(cat("cannot exec in container \"", o.id, "\": it is paused (use --ignore-paused)"));
  auto p = TRY(build_process(o, dir_path));
  auto subs = TRY(parse_sub_cgroups(o.cgroups));
  // The container's filter applies to every process in it, exec'd ones included.
  std::optional<SeccompProgram> seccomp;
  std::optional<oci::Seccomp> profile;  // with a notify action: whose listener gets the exec'd process's fd
  if (auto spec = oci::load_spec(dir_path); spec && spec->linux_.seccomp) {
    seccomp = TRYC(compile_seccomp_cached(*spec->linux_.seccomp, path_join(o.root, ".seccomp-cache")), "linux.seccomp");
    if (seccomp->notify) profile = *spec->linux_.seccomp;
  }
  if (p.terminal && o.console_socket.empty() && o.detach)
    return Error::invalid("exec --tty --detach needs --console-socket");

  auto pidfd = TRY(sys::pidfd_open(state.pid));
  if (!process_alive(state.pid, state.pid_start_time)) return Error(ESRCH, cat("cannot exec in container \"", o.id, "\": container not running"));
  int flags = namespaces_to_join(state.pid);
  // Without a mount namespace of its own the container's root is a chroot: its init's root.
  UniqueFd root;
  if (!(flags & CLONE_NEWNS))
    root = TRYC(open_file(cat("/proc/", state.pid, "/root"), O_PATH | O_DIRECTORY), "the container's root");
  if (log::enabled(log::Level::kDebug)) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "%#x", static_cast<unsigned>(flags));
    log::debug("exec", cat("container \"", o.id, "\" (init pid ", state.pid, "): joining its namespaces ", hex));
  }
  // pid and time namespaces apply to our children: enter them for the fork below,
  // and return to ours after it (threads cannot be made while they differ).
  UniqueFd own_ns;
  if (int for_children = flags & (CLONE_NEWPID | CLONE_NEWTIME)) {
    own_ns = TRY(sys::pidfd_open(::getpid()));
    if (::setns(pidfd.get(), for_children) < 0) {
      if (errno == ESRCH) return Error(ESRCH, cat("cannot exec in container \"", o.id, "\": it is stopped"));
      return Error::from_errno("join the container's pid namespace");
    }
  }
  flags &= ~(CLONE_NEWPID | CLONE_NEWTIME);

  UniqueFd console, console_ours;
  int console_fd = -1;
  if (p.terminal) {
    if (!o.console_socket.empty()) {
      console = TRY(connect_console_socket(o.console_socket));
    } else {
      int sv[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return Error::from_errno("socketpair");
      console_ours.reset(sv[0]);
      console.reset(sv[1]);
    }
    console_fd = console.get();
  }
  std::optional<SignalForwarder> forwarder;
  if (!o.detach) forwarder.emplace();

  auto [parent, child] = TRY(SyncSocket::pair());
  pid_t pid = sys::clone_fork(0);
  if (pid < 0) return Error::from_errno("fork");
  if (pid == 0) {
    parent.close();
    exec_child(child, pidfd.get(), flags, root ? root.get() : -1, p, seccomp, console_fd, o.preserve_fds);
  }
  child.close();
  console.reset();
  if (own_ns) ::setns(own_ns.get(), CLONE_NEWPID | CLONE_NEWTIME);
  auto fail = [&](Error e) -> Error {
    ::kill(pid, SIGKILL);
    return e;
  };
  if (auto cg = cgroups::Manager::load(state.cgroup)) {
    if (auto st = (*cg)->add_process(pid); !st) return fail(std::move(st).error().context("join the container's cgroup"));
    if (auto st = enter_sub_cgroups(**cg, subs, pid); !st) return fail(std::move(st).error());
    log::debug("exec", cat("pid ", pid, " joined the cgroup of container \"", o.id, "\""));
  } else if (!subs.empty()) {
    return fail(Error::invalid("--cgroup: the container has no cgroup"));
  }
  if (auto st = parent.send(SyncMsg::kGo); !st) return fail(std::move(st).error());
  // The child closes its end by exec'ing (close-on-exec) or reports why it could not.
  // In a frozen cgroup it freezes before it gets there: then there is nothing to wait for.
  auto msg = status == ContainerStatus::kPaused ? Result<SyncMessage>(Error(EPIPE, "paused")) : parent.recv();
  if (msg && msg->type == SyncMsg::kSeccompFd) {
    if (auto st = send_listener_fd(*profile, msg->fd.get(), state, pid); !st)
      return fail(std::move(st).error().context("linux.seccomp.listenerPath"));
    msg = parent.recv();
  }
  if (msg && msg->type == SyncMsg::kError) return fail(Error(msg->code ? msg->code : EIO, msg->payload));
  if (!msg && msg.error().code() != EPIPE) return fail(std::move(msg).error());
  log::debug("exec", cat("process ", pid, " started: ", p.args[0]));
  // A pid file that cannot be written fails the exec, and its process goes (as with runc).
  if (!o.pid_file.empty()) {
    if (auto st = write_file_atomic(absolute_path(o.pid_file), std::to_string(pid), 0644); !st)
      return fail(std::move(st).error().context("--pid-file"));
  }
  if (o.detach) return 0;
  UniqueFd master;
  if (console_ours) {
    master = TRY(sys::recv_fd(console_ours.get()));
    clear_onlcr(master.get());
  }
  return forwarder->wait(pid, master ? master.get() : -1);
}

}  // namespace vessel::container
