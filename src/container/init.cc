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

#include "common/fs.h"
#include "common/strings.h"
#include "container/console.h"
#include "container/hooks.h"
#include "container/process_setup.h"
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

Status setup_before_ready(const InitContext& ctx, std::optional<SeccompProgram>& seccomp) {
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

  TRYC(prepare_rootfs(ctx.rootfs), "rootfs");
  TRY(ctx.sync->send(SyncMsg::kRunHooks));
  auto hooks = TRY(ctx.sync->expect(SyncMsg::kHooksDone));
  TRY(run_hooks(spec.hooks.create_container, hooks.payload, "createContainer"));

  TRY(enter_rootfs(ctx.rootfs.rootfs, ctx.no_pivot));
  TRY(finalize_rootfs(spec, ctx.rootfs.in_userns));

  const oci::Process& p = *spec.process;
  if (p.terminal) {
    if (ctx.console_socket < 0) return Error::invalid("process.terminal is set but no --console-socket was given");
    TRYC(setup_console(ctx.console_socket, p.console_height, p.console_width, true), "console");
  } else if (::setsid() < 0) {
    // A session of its own, as runc's init has: the container's processes do not belong
    // to the caller's session (and CRIU can dump them: a session leader outside the
    // container's pid namespace cannot be restored).
    return Error::from_errno("setsid");
  }
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

// After `start`: hooks, then the process's identity, then exec. `fifo` stays open
// (close-on-exec): `start` reads until it closes, so a failure written to it is
// reported by `start` and a successful execve closes it.
Error start_process(const InitContext& ctx, const std::optional<SeccompProgram>& seccomp, UniqueFd& fifo) {
  const oci::Process& p = *ctx.spec->process;
  {
    auto f = open_file(sys::fd_path(ctx.fifo), O_WRONLY);
    if (!f) return std::move(f).error().context("open exec fifo");
    if (auto st = write_all(f->get(), "0"); !st) return std::move(st).error().context("write exec fifo");
    fifo = std::move(*f);
  }
  if (auto st = run_hooks(ctx.spec->hooks.start_container, "", "startContainer"); !st) return std::move(st).error();
  auto path = find_executable(p);
  if (!path) return std::move(path).error();
  if (p.user.umask) ::umask(*p.user.umask);
  return finish_process(*path, p, seccomp, ctx.preserve_fds);
}

}  // namespace

void container_init(const InitContext& ctx) {
  for (int fd : ctx.close_fds) ::close(fd);
  // Not ptrace-able or readable through /proc by the container until execve (CVE-2016-9962).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  sigset_t all;
  sigemptyset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);

  std::optional<SeccompProgram> seccomp;
  auto st = setup_before_ready(ctx, seccomp);
  if (!st) {
    (void)ctx.sync->send_error(st.error());
    ::_exit(1);
  }
  // The parent exits after create: from here on it may go away.
  ::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  if (!ctx.sync->send(SyncMsg::kReady)) ::_exit(1);
  ctx.sync->close();

  UniqueFd fifo;
  Error e = start_process(ctx, seccomp, fifo);
  // `start` reports it (it reads the fifo); only when that is gone does the container's stderr get it.
  if (!fifo || !write_all(fifo.get(), e.message().substr(0, 4000))) {
    std::string msg = cat("vessel: ", e.message(), "\n");
    (void)!::write(2, msg.data(), msg.size());
  }
  ::_exit(e.code() == ENOENT ? 127 : 126);
}

}  // namespace vessel::container
