// Walking and removing a cgroup subtree.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.h"

namespace vessel::cgroups {

// Every pid in cgroup.procs of `dir` and of all its descendants, sorted, without duplicates.
Result<std::vector<pid_t>> list_pids_recursive(const std::string& dir);

// rmdir of `dir` after its descendant cgroups (deepest first), retrying EBUSY
// (exiting processes) for up to `timeout_ms`. A missing directory is success.
Status remove_cgroup_tree(const std::string& dir, int timeout_ms = 5000);

}  // namespace vessel::cgroups
