#include "image/build/run_step.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "container/rootfs_path.h"
#include "image/bundle.h"
#include "image/store.h"
#include "image/json_fields.h"
#include "image/user.h"
#include "sys/syscalls.h"

namespace vessel::image::build {

namespace {

using Json = nlohmann::json;

// The host's name resolution files, bound read-only where the image has the file or none
// (not over a symlink of the image, whose target would be created inside it).
void bind_host_files(WorkRoot& root, Json& spec) {
  for (const char* path : {"/etc/resolv.conf", "/etc/hosts"}) {
    struct stat host{};
    if (::stat(path, &host) < 0 || !S_ISREG(host.st_mode)) continue;
    bool in_image = false;
    if (auto fd = sys::openat2(root.rootfs_fd(), path, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0, RESOLVE_IN_ROOT)) {
      struct stat st{};
      if (::fstat(fd->get(), &st) < 0 || !S_ISREG(st.st_mode)) continue;
      in_image = true;
    }
    spec["mounts"].push_back({{"destination", path}, {"type", "bind"}, {"source", path}, {"options", {"rbind", "ro", "nosuid", "nodev"}}});
    if (!in_image) root.drop_on_commit(path);
  }
}

Result<std::string> step_config(WorkRoot& root, const RunStep& s) {
  TRYC(container::mkdir_in_root(root.rootfs_fd(), s.cwd, 0755), "WORKDIR " + s.cwd);
  auto user = TRYC(resolve_user(root.rootfs_fd(), s.user), "USER " + s.user);
  RunConfig run;
  run.cmd = s.argv;
  run.env = s.env;
  run.working_dir = s.cwd;
  auto text = TRY(bundle_config_json(run, {}, "vessel-build", user));
  Json spec = Json::parse(text);
  // The host's network: drop the network namespace.
  auto& ns = spec["linux"]["namespaces"];
  Json kept = Json::array();
  for (auto& n : ns)
    if (string_field(n, "type") != "network") kept.push_back(n);
  ns = kept;
  bind_host_files(root, spec);
  return spec.dump(2) + "\n";
}

// `vessel --root R kill ID KILL`, quietly (the container may not exist yet, or any more).
void kill_container(const std::string& runtime_root, const std::string& id) {
  pid_t killer = ::fork();
  if (killer == 0) {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
    }
    ::execl("/proc/self/exe", "vessel", "--root", runtime_root.c_str(), "kill", id.c_str(), "KILL", nullptr);
    ::_exit(127);
  }
  if (killer > 0) (void)::waitpid(killer, nullptr, 0);
}

// Waits for the `vessel run` child. A stop signal (SIGINT, SIGTERM, SIGHUP: blocked by the
// builder) kills the container, whose PID 1 would ignore it; returns that signal (0: none).
Result<int> wait_step(pid_t pid, const std::string& runtime_root, const std::string& id, int& status) {
  sigset_t wake, old;
  ::sigemptyset(&wake);
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) ::sigaddset(&wake, sig);
  ::sigprocmask(SIG_BLOCK, &wake, &old);
  ScopeExit restore([&] { ::sigprocmask(SIG_SETMASK, &old, nullptr); });
  int stopped_by = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return stopped_by;
    if (r < 0 && errno != EINTR) return Error::from_errno("wait for the RUN container");
    // Until the child is gone (the container may still be starting): kill the container.
    if (stopped_by) kill_container(runtime_root, id);
    timespec tick{1, 0};
    int sig = ::sigtimedwait(&wake, nullptr, &tick);
    if (sig > 0 && sig != SIGCHLD && !stopped_by) stopped_by = sig;
  }
}

}  // namespace

Status run_in(WorkRoot& root, const RunStep& s) {
  TRY(write_file(root.dir() + "/config.json", TRY(step_config(root, s)), 0, 0600));
  std::string id = "vessel-build-" + random_id();
  UniqueFd out;
  if (s.quiet) {
    out.reset(::memfd_create("vessel-build-output", MFD_CLOEXEC));
    if (!out) return Error::from_errno("memfd_create");
  }
  // Recorded before the container exists: a builder killed during the step leaves
  // this for the next command's reclaim_temp(), which removes the container.
  TRY(write_file(root.dir() + "/" + kStepContainerFile, cat(absolute_path(s.runtime_root), "\n", id, "\n"), 0, 0600));
  std::vector<std::string> args = {"vessel", "--root", s.runtime_root, "run", "--bundle", root.dir(), id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork");
  if (pid == 0) {
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the builder blocks the stop signals; the step does not
    int null = ::open("/dev/null", O_RDONLY);
    int sink = out ? out.get() : STDERR_FILENO;
    if (null < 0 || ::dup2(null, STDIN_FILENO) < 0 || ::dup2(sink, STDOUT_FILENO) < 0 || ::dup2(sink, STDERR_FILENO) < 0)
      ::_exit(127);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  int status = 0;
  int stopped_by = TRY(wait_step(pid, s.runtime_root, id, status));
  if (stopped_by) return Error(EINTR, cat("interrupted by ", ::strsignal(stopped_by)));
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code == 0) return ok();
  if (out) {
    (void)::lseek(out.get(), 0, SEEK_SET);
    if (auto text = read_fd(out.get())) (void)write_all(STDERR_FILENO, *text);
  }
  return Error(ECHILD, cat("the command exited with status ", code));
}

}  // namespace vessel::image::build
