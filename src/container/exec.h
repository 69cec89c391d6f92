// `exec`: a new process in a running container, joining its namespaces,
// cgroup, capabilities, rlimits and no_new_privs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace vessel::container {

struct ExecOptions {
  std::string root;
  std::string id;
  std::string process_file;  // --process: a runtime-spec process object
  std::vector<std::string> args;
  std::optional<bool> tty;
  std::string console_socket;
  bool detach = false;
  std::string pid_file;
  std::string cwd;
  std::vector<std::string> env;  // KEY=VALUE, added to (or replacing) the container's env
  std::string user;              // UID[:GID]
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps;
  bool no_new_privs = false;
  int preserve_fds = 0;
  bool ignore_paused = false;
  std::vector<std::string> cgroups;  // --cgroup [CONTROLLER:]PATH: sub-cgroups to run in (runc)
};

// Runs the process; in the foreground returns its exit status, with --detach 0.
Result<int> exec(const ExecOptions& o);

}  // namespace vessel::container
