#include "container/init.h"

#include <fcntl.h>
#include <linux/keyctl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <vector>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "container/console.h"
#include "container/hooks.h"
#include "container/process_setup.h"
#include "oci/json_reader.h"
#include "sys/net.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

Status join_namespaces(const InitContext& ctx, bool user_only) {
  for (const auto& [type, fd] : ctx.join) {
    bool is_user = type == oci::NamespaceType::kUser;
    if (is_user != user_only) continue;
    if (type == oci::NamespaceType::kPid || type == oci::NamespaceType::kTime) continue;  // joined by the parent
    if (::setns(fd, oci::namespace_clone_flag(type)) < 0)
      return Error::from_errno(cat("join ", oci::namespace_type_name(type), " namespace"));
  }
  return ok();
}

// True when a config mount is a bind mount (its source is opened by the runtime).
bool needs_source_fds(const oci::Spec& spec) {
  for (const auto& m : spec.mounts)
    if (m.parsed.bind) return true;
  return false;
}

// The state startContainer hooks get: `created`, with the init's pid as the container sees it (as runc).
std::string start_hook_state(const std::string& create_state) {
  auto j = oci::Json::parse(create_state, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return create_state;
  j["status"] = "created";
  j["pid"] = ::getpid();
  return j.dump();
}

// `fd_dir`: /proc/self/fd of the host's procfs, kept when the container has no mount
// namespace (its chroot has no /proc) for start_process() to reopen the exec fifo.
Status setup_before_ready(const InitContext& ctx, std::optional<SeccompProgram>& seccomp, UniqueFd& fd_dir,
                          std::string& hook_state) {
  const oci::Spec& spec = *ctx.spec;
  auto go = TRY(ctx.sync->expect(SyncMsg::kGo));
  (void)go;
  if (ctx.join_user_ns) {
    TRY(join_namespaces(ctx, true));
  }
  if (ctx.rootfs.in_userns) {
    // Become root of the user namespace (when 0 is mapped); capabilities come with it.
    if (::setresgid(0, 0, 0) < 0 && errno != EINVAL) return Error::from_errno("setgid 0 in the user namespace");
    if (::setresuid(0, 0, 0) < 0 && errno != EINVAL) return Error::from_errno("setuid 0 in the user namespace");
  }
  TRY(join_namespaces(ctx, false));
  if (ctx.unshare_flags && ::unshare(ctx.unshare_flags) < 0) return Error::from_errno("unshare namespaces");
  // A network namespace of our making has only `lo`, down: bring it up as runc does.
  // One given by path belongs to whoever made it (an engine's, set up already).
  if (const auto* net = spec.linux_.find_namespace(oci::NamespaceType::kNetwork); net && net->path.empty())
    TRYC(sys::set_link_up("lo"), "bring up the loopback interface of the new network namespace");
  if (!ctx.no_new_keyring) {
    std::string name = "_ses.vessel";
    if (::syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.c_str()) < 0 && errno != ENOSYS && errno != EPERM)
      return Error::from_errno("join a new session keyring");
  }
  if (!spec.hostname.empty() && ::sethostname(spec.hostname.data(), spec.hostname.size()) < 0)
    return Error::from_errno(cat("sethostname \"", spec.hostname, "\""));
  if (!spec.domainname.empty() && ::setdomainname(spec.domainname.data(), spec.domainname.size()) < 0)
    return Error::from_errno(cat("setdomainname \"", spec.domainname, "\""));

  // Without a mount namespace the container shares ours (runtime-spec): the root is a
  // chroot, and what the config mounts is mounted here, under the rootfs bind create made.
  bool own_mounts = spec.linux_.has_namespace(oci::NamespaceType::kMount);
  bool mounts = own_mounts || ctx.rootfs.host_namespace;
  RootfsPlan plan = ctx.rootfs;
  std::vector<UniqueFd> sources;
  if (own_mounts && plan.in_userns && needs_source_fds(spec)) {
    // Bind sources are opened by the runtime, with the host's credentials (see RootfsPlan).
    TRY(ctx.sync->send(SyncMsg::kMountSources));
    for (size_t i = 0; i < spec.mounts.size(); ++i) {
      if (!spec.mounts[i].parsed.bind) {
        plan.source_fds.push_back(-1);
        continue;
      }
      auto msg = TRY(ctx.sync->expect(SyncMsg::kMountSourceFd));
      if (!msg.fd) return Error(EPROTO, cat("mounts[", i, "]: no source descriptor from the runtime"));
      plan.source_fds.push_back(msg.fd.get());
      sources.push_back(std::move(msg.fd));
    }
  }
  if (mounts) TRYC(prepare_rootfs(plan), "rootfs");
  sources.clear();
  TRY(ctx.sync->send(SyncMsg::kRunHooks));
  auto hooks = TRY(ctx.sync->expect(SyncMsg::kHooksDone));
  // In the rootfs, as runc runs them (the mount namespace is the container's, before pivot_root).
  TRY(run_hooks(spec.hooks.create_container, hooks.payload, "createContainer", ctx.rootfs.rootfs));
  hook_state = hooks.payload;

  if (own_mounts) {
    TRY(enter_rootfs(ctx.rootfs.rootfs, ctx.no_pivot));
  } else {
    fd_dir = TRYC(open_file("/proc/self/fd", O_PATH | O_DIRECTORY), "keep /proc/self/fd for the exec fifo");
    if (::chroot(ctx.rootfs.rootfs.c_str()) < 0) return Error::from_errno(cat("chroot ", ctx.rootfs.rootfs));
    if (::chdir("/") < 0) return Error::from_errno("chdir / in the new root");
  }
  const oci::Process& p = *spec.process;
  // As runc: a missing process.cwd is made (before a read-only root is remounted).
  if (!path_exists(p.cwd)) TRYC(mkdir_p(p.cwd, 0755), cat("create process.cwd ", p.cwd));
  if (mounts) TRY(finalize_rootfs(spec, ctx.rootfs.in_userns));

  if (p.terminal) {
    if (ctx.console_socket < 0) return Error::invalid("process.terminal is set but no --console-socket was given");
    TRYC(setup_console(ctx.console_socket, p.console_height, p.console_width, mounts), "console");
  } else if (::setsid() < 0) {
    // A session of its own, as runc's init has: the container's processes do not belong
    // to the caller's session (and CRIU can dump them: a session leader outside the
    // container's pid namespace cannot be restored).
    return Error::from_errno("setsid");
  }
  if (mounts) TRY(remount_readonly_mounts(spec));
  TRY(enter_cwd(p.cwd));
  TRY(find_executable(p));
  TRY(check_capabilities(p));
  TRY(apply_rlimits(p.rlimits));
  if (ctx.seccomp) {
    seccomp = ctx.seccomp;
    if (seccomp->notify) {
      // The listener must get its fd now, while create still runs: load early and
      // let the parent pass it on (the runtime's own remaining calls are filtered too).
      auto listener = TRYC(load_seccomp(*seccomp), "linux.seccomp");
      TRY(ctx.sync->send_fd(SyncMsg::kSeccompFd, listener.get()));
      seccomp.reset();
    }
  }
  return ok();
}

// After `start`: the process's identity (filter, user, capabilities), then the
// startContainer hooks under it, then exec. `fifo` stays open
// (close-on-exec): `start` reads until it closes, so a failure written to it is
// reported by `start` and a successful execve closes it.
Error start_process(const InitContext& ctx, const std::optional<SeccompProgram>& seccomp, UniqueFd& fifo,
                    const UniqueFd& fd_dir, const std::string& hook_state) {
  const oci::Process& p = *ctx.spec->process;
  {
    auto f = fd_dir ? open_at(fd_dir.get(), std::to_string(ctx.fifo), O_WRONLY) : open_file(sys::fd_path(ctx.fifo), O_WRONLY);
    if (!f) return std::move(f).error().context("open exec fifo");
    if (auto st = write_all(f->get(), "0"); !st) return std::move(st).error().context("write exec fifo");
    fifo = std::move(*f);
  }
  // As runc: startContainer hooks run as the process will, under its seccomp filter, user
  // and capabilities, and see only the fds it gets (stdio and --preserve-fds).
  if (auto st = become_process(p, seccomp, ctx.preserve_fds); !st) return std::move(st).error();
  if (!ctx.spec->hooks.start_container.empty()) {
    // Hooks without an env of their own get the process's, as runc's always have.
    std::vector<std::string> env = process_env(p.env, [&] { return home_of(p.user.uid); });
    if (auto st = run_hooks_with_env(ctx.spec->hooks.start_container, start_hook_state(hook_state), "startContainer", "",
                                     &env);
        !st)
      return std::move(st).error();
  }
  auto path = find_executable(p);
  if (!path) return std::move(path).error();
  if (p.user.umask) ::umask(*p.user.umask);
  return exec_process(*path, p, ctx.preserve_fds);
}

}  // namespace

void container_init(const InitContext& ctx) {
  for (int fd : ctx.close_fds) ::close(fd);
  // The caller's other descriptors go now, not at execve: a created container would hold
  // them until start (a pipe's reader waiting for its end, a file kept busy), where runc's
  // init never gets them. Kept: stdio, the --preserve-fds, and what the init uses.
  {
    std::vector<int> keep = {ctx.sync->fd(), ctx.fifo, ctx.console_socket, log::output_fd()};
    for (const auto& [type, fd] : ctx.join) keep.push_back(fd);
    sys::close_from_except(3 + ctx.preserve_fds, keep);
  }
  // Not ptrace-able or readable through /proc by the container until execve (CVE-2016-9962).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);

  std::optional<SeccompProgram> seccomp;
  UniqueFd fd_dir;
  std::string hook_state;
  auto st = setup_before_ready(ctx, seccomp, fd_dir, hook_state);
  if (!st) {
    (void)ctx.sync->send_error(st.error());
    ::_exit(1);
  }
  // The parent exits after create: from here on it may go away.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  if (!ctx.sync->send(SyncMsg::kReady)) ::_exit(1);
  ctx.sync->close();

  UniqueFd fifo;
  Error e = start_process(ctx, seccomp, fifo, fd_dir, hook_state);
  // `start` reports it (it reads the fifo); only when that is gone does the container's stderr get it.
  if (!fifo || !write_all(fifo.get(), e.message().substr(0, 4000))) {
    std::string msg = cat("vessel: ", e.message(), "\n");
    (void)!::write(2, msg.data(), msg.size());
  }
  ::_exit(e.code() == ENOENT ? 127 : 126);
}

}  // namespace vessel::container
