// The container lifecycle behind runc's verbs: create, start, state, kill, delete.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"
#include "container/state.h"
#include "oci/spec.h"

namespace vessel::container {

struct CreateOptions {
  std::string root;  // state root (--root)
  std::string id;
  std::string bundle;
  std::string pid_file;
  std::string console_socket;  // path, or empty
  int console_fd = -1;         // an already connected console socket (foreground run)
  bool no_pivot = false;
  bool no_new_keyring = false;
  int preserve_fds = 0;
  bool systemd_cgroup = false;
};

// Sets the container up and leaves its init waiting for `start`. Returns the init's pid.
// On failure nothing is left: no state directory, cgroup, mount or process.
Result<pid_t> create(const CreateOptions& o);

// Lets a created container's init exec the user process; runs poststart hooks.
Status start(const std::string& root, const std::string& id);

// The config's limits for the container's cgroup; device rules get the config's devices
// and the defaults every container needs (null, zero, tty, pts…) appended, as runc does.
oci::LinuxResources cgroup_resources(const oci::Spec& spec);

// Sends `sig` to the init (or, with `all`, to every process of the container).
Status kill(const std::string& root, const std::string& id, int sig, bool all);

// Removes a stopped container (with `force`, kills it first): poststop hooks,
// cgroups, state. Leaves nothing behind.
Status remove(const std::string& root, const std::string& id, bool force);

// Current state of one container.
Result<State> load_state(const std::string& root, const std::string& id, ContainerStatus* status);

// Parses "KILL", "SIGKILL", "9" into a signal number.
Result<int> parse_signal(const std::string& s);

}  // namespace vessel::container
