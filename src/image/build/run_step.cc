#include "image/build/run_step.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/strings.h"
#include "container/rootfs_path.h"
#include "image/bundle.h"
#include "image/user.h"
#include "image/json_fields.h"

namespace vessel::image::build {

namespace {

using Json = nlohmann::json;

Result<std::string> step_config(const WorkRoot& root, const RunStep& s) {
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
  return spec.dump(2) + "\n";
}

}  // namespace

Status run_in(const WorkRoot& root, const RunStep& s) {
  TRY(write_file(root.dir() + "/config.json", TRY(step_config(root, s)), 0, 0600));
  std::string id = "vessel-build-" + random_id();
  UniqueFd out;
  if (s.quiet) {
    out.reset(::memfd_create("vessel-build-output", MFD_CLOEXEC));
    if (!out) return Error::from_errno("memfd_create");
  }
  std::vector<std::string> args = {"vessel", "--root", s.runtime_root, "run", "--bundle", root.dir(), id};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Error::from_errno("fork");
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    int sink = out ? out.get() : STDERR_FILENO;
    if (null < 0 || ::dup2(null, STDIN_FILENO) < 0 || ::dup2(sink, STDOUT_FILENO) < 0 || ::dup2(sink, STDERR_FILENO) < 0)
      ::_exit(127);
    ::execv("/proc/self/exe", argv.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return Error::from_errno("wait for the RUN container");
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code == 0) return ok();
  if (out) {
    (void)::lseek(out.get(), 0, SEEK_SET);
    if (auto text = read_fd(out.get())) (void)write_all(STDERR_FILENO, *text);
  }
  return Error(ECHILD, cat("the command exited with status ", code));
}

}  // namespace vessel::image::build
