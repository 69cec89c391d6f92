// Operations on a live container's cgroups: pause/resume, update, ps.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "oci/resources.h"

namespace vessel::container {

// Freezes every process of a running container (status becomes paused).
Status pause(const std::string& root, const std::string& id);
// Thaws a paused container.
Status resume(const std::string& root, const std::string& id);
// Applies new limits to a created, running or paused container.
Status update(const std::string& root, const std::string& id, const oci::LinuxResources& resources);
// The pids (host view) of every process of the container.
Result<std::vector<pid_t>> pids(const std::string& root, const std::string& id);

}  // namespace vessel::container
