#include "container/hooks.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "sys/syscalls.h"

namespace vessel::container {
namespace {

std::vector<char*> cstrings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

Status run_hook(const oci::Hook& hook, const std::string& state_json, const std::string& cwd,
                const std::vector<std::string>* default_env) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) < 0) return Error::from_errno("pipe");
  UniqueFd rd(in[0]), wr(in[1]);
  if (::pipe2(out, O_CLOEXEC) < 0) return Error::from_errno("pipe");
  UniqueFd out_rd(out[0]), out_wr(out[1]);
  if (::pipe2(err, O_CLOEXEC) < 0) return Error::from_errno("pipe");
  UniqueFd err_rd(err[0]), err_wr(err[1]);
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<std::string> env = hook.env.empty() && default_env ? *default_env : hook.env;
  auto argv = cstrings(args);
  auto envp = cstrings(env);
  // Without an env of its own, a hook gets the runtime's environment (as runc and crun).
  char** hook_env = env.empty() ? environ : envp.data();
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork hook");
  if (pid == 0) {
    // Its output is collected, as runc collects it: only a failure shows it (in the
    // error), so a hook never writes into the container's or the engine's streams.
    ::dup2(rd.get(), 0);
    ::dup2(out_wr.get(), 1);
    ::dup2(err_wr.get(), 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) < 0) ::_exit(126);
    ::execve(hook.path.c_str(), argv.data(), hook_env);
    ::_exit(127);
  }
  rd.reset();
  out_wr.reset();
  err_wr.reset();
  // The hook may not read its stdin; a full pipe or EPIPE is not its failure.
  ::signal(SIGPIPE, SIG_IGN);
  ::fcntl(wr.get(), F_SETFL, O_NONBLOCK);
  (void)write_all(wr.get(), state_json);
  wr.reset();

  // Up to kKeep bytes of each stream are kept; the rest is read and dropped.
  constexpr size_t kKeep = 16 << 10;
  std::string outputs[2];
  auto drain = [&](UniqueFd& fd, std::string& keep) {
    char buf[4096];
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) {
      if (n == 0 || (errno != EINTR && errno != EAGAIN)) fd.reset();
      return;
    }
    keep.append(buf, std::min(static_cast<size_t>(n), kKeep - std::min(kKeep, keep.size())));
  };
  auto pidfd = sys::pidfd_open(pid);
  int64_t deadline = hook.timeout ? now_ms() + int64_t(*hook.timeout) * 1000 : -1;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Error::from_errno("waitpid hook");
    int wait_ms = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - now_ms()));
    if (deadline >= 0 && wait_ms == 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return Error(ETIMEDOUT, cat(hook.path, ": timed out after ", *hook.timeout, "s"));
    }
    pollfd p[3] = {{pidfd ? pidfd->get() : -1, POLLIN, 0}, {out_rd ? out_rd.get() : -1, POLLIN, 0},
                   {err_rd ? err_rd.get() : -1, POLLIN, 0}};
    int timeout = pidfd ? wait_ms : (wait_ms < 0 || wait_ms > 10 ? 10 : wait_ms);
    if (::poll(p, 3, timeout) > 0) {
      if (p[1].revents) drain(out_rd, outputs[0]);
      if (p[2].revents) drain(err_rd, outputs[1]);
    }
  }
  // What it wrote last is still in the pipes; a process it left behind may hold them open,
  // so only what is there now is read.
  for (int k = 0; k < 2; ++k) {
    UniqueFd& fd = k == 0 ? out_rd : err_rd;
    if (!fd) continue;
    ::fcntl(fd.get(), F_SETFL, O_NONBLOCK);
    for (int chunks = 0; fd && chunks < 64; ++chunks) {
      pollfd p{fd.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) break;
      drain(fd, outputs[k]);
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !path_exists(hook.path))
    return Error(ENOENT, cat(hook.path, ": no such file"));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 126 && !cwd.empty() && !path_exists(cwd))
    return Error(ENOENT, cat(hook.path, ": cannot enter ", cwd));
  std::string how = WIFEXITED(status) ? cat("exited with status ", WEXITSTATUS(status))
                                      : cat("killed by signal ", WTERMSIG(status));
  return Error(EIO, cat(hook.path, ": ", how, ", stdout: ", outputs[0], ", stderr: ", outputs[1]));
}

Status run_hooks(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind,
                 const std::string& cwd) {
  return run_hooks_with_env(hooks, state_json, kind, cwd, nullptr);
}

Status run_hooks_with_env(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind,
                          const std::string& cwd, const std::vector<std::string>* default_env) {
  // runc's words: engines and scripts look for "error running <kind> hook #<i>".
  for (size_t i = 0; i < hooks.size(); ++i)
    TRYC(run_hook(hooks[i], state_json, cwd, default_env), cat("error running ", kind, " hook #", i));
  return ok();
}

void run_hooks_logged(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind,
                      const std::string& cwd, const char* component) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    if (auto st = run_hook(hooks[i], state_json, cwd); !st)
      log::warn(component, std::move(st).error().context(cat("error running ", kind, " hook #", i)).message());
  }
}

}  // namespace vessel::container
