// Starting a detached VMM and finding it again: what the `vessel vm` verbs
// use. launch_detached() forks the VMM process (a new session, stdio on
// /dev/null, errors in <state dir>/vmm.log) and returns once it serves its
// API (and runs the VM when asked), or with the VMM's own error, leaving
// nothing behind.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"
#include "vmm/instance/state_dir.h"
#include "vmm/instance/vmm.h"

namespace vessel::vmm {

// Creates <root>/vm/<id>/ (an error if the VM exists), forks the VMM.
Result<pid_t> launch_detached(VmmOptions o);

// A VM as the clients see it.
struct VmHandle {
  VmPaths paths;
  VmmRecord record;
  bool alive = false;  // the VMM process runs
};
// Finds VM `id` under `root` (an error naming the id if there is none).
Result<VmHandle> find_vm(const std::string& root, const std::string& id);

// The state of a VM: from its API while the VMM runs, else from the state
// directory (status "stopped" with exit.json's reason).
Result<nlohmann::json> vm_state(const VmHandle& h, bool stats);

// Waits until the VMM of `h` has exited (true) or `timeout_ms` passed.
bool wait_vmm_exit(const VmHandle& h, int timeout_ms);

// Removes the state directory of a stopped VM (and its API socket if it lives elsewhere).
Status remove_vm(const VmHandle& h);

}  // namespace vessel::vmm
