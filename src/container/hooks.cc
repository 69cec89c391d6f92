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

Status run_hook(const oci::Hook& hook, const std::string& state_json, const std::string& cwd) {
  int in[2];
  if (::pipe2(in, O_CLOEXEC) < 0) return Error::from_errno("pipe");
  UniqueFd rd(in[0]), wr(in[1]);
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path} : hook.args;
  std::vector<std::string> env = hook.env;
  auto argv = cstrings(args);
  auto envp = cstrings(env);
  // Without an env of its own, a hook gets the runtime's environment (as runc and crun).
  char** hook_env = hook.env.empty() ? environ : envp.data();
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork hook");
  if (pid == 0) {
    ::dup2(rd.get(), 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) < 0) ::_exit(126);
    ::execve(hook.path.c_str(), argv.data(), hook_env);
    ::_exit(127);
  }
  rd.reset();
  // The hook may not read its stdin; a full pipe or EPIPE is not its failure.
  ::signal(SIGPIPE, SIG_IGN);
  ::fcntl(wr.get(), F_SETFL, O_NONBLOCK);
  (void)write_all(wr.get(), state_json);
  wr.reset();

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
    if (pidfd) {
      pollfd p{pidfd->get(), POLLIN, 0};
      ::poll(&p, 1, wait_ms);
    } else {
      ::usleep(10000);
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ok();
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !path_exists(hook.path))
    return Error(ENOENT, cat(hook.path, ": no such file"));
  if (WIFEXITED(status) && WEXITSTATUS(status) == 126 && !cwd.empty() && !path_exists(cwd))
    return Error(ENOENT, cat(hook.path, ": cannot enter ", cwd));
  if (WIFEXITED(status)) return Error(EIO, cat(hook.path, ": exited with status ", WEXITSTATUS(status)));
  return Error(EIO, cat(hook.path, ": killed by signal ", WTERMSIG(status)));
}

Status run_hooks(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind,
                 const std::string& cwd) {
  for (size_t i = 0; i < hooks.size(); ++i) TRYC(run_hook(hooks[i], state_json, cwd), cat(kind, " hook [", i, "]"));
  return ok();
}

void run_hooks_logged(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind,
                      const std::string& cwd, const char* component) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    if (auto st = run_hook(hooks[i], state_json, cwd); !st)
      log::warn(component, std::move(st).error().context(cat(kind, " hook [", i, "]")).message());
  }
}

}  // namespace vessel::container
