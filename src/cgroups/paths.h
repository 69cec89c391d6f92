// Where a container's cgroup goes inside each hierarchy (runc's rules).
#pragma once

#include <string>

#include "cgroups/layout.h"
#include "common/error.h"

namespace vessel::cgroups {

// The container's cgroup path inside one hierarchy, relative to its mount point:
//  - absolute cgroups_path: taken as is (relative to the hierarchy's mount point);
//  - relative cgroups_path: below the runtime's own cgroup `own_path` in that hierarchy
//    (already relative to the mount point, see own_path_in_mount);
//  - empty: "/vessel/<container_id>".
// ".." components are refused; duplicate slashes are removed. The result starts with "/".
Result<std::string> resolve_path(const std::string& cgroups_path, const std::string& container_id,
                                 const std::string& own_path);

// Makes a path from /proc/self/cgroup relative to a hierarchy mounted with `mount_root`
// (mountinfo field 4): "/docker/x/y" with mount root "/docker/x" -> "/y".
std::string own_path_in_mount(const std::string& proc_path, const std::string& mount_root);

// The runtime's own path in hierarchy `h`, found in parsed /proc/self/cgroup; "/" when absent.
std::string own_path_for(const Hierarchy& h, const std::vector<ProcCgroup>& self);

// Normalises "a//b/./c/" to "/a/b/c"; a ".." component is an error (no escaping the hierarchy).
Result<std::string> clean_path(const std::string& path);

}  // namespace vessel::cgroups
