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
//  - empty: "/vessel/<default_name>" (see default_cgroup_name).
// ".." components are refused; duplicate slashes are removed. The result starts with "/".
Result<std::string> resolve_path(const std::string& cgroups_path, const std::string& default_name,
                                 const std::string& own_path);

// The leaf name of a container's cgroup when its config names none: "<id>-<8 hex digits>",
// the digits a hash of the state root, so that the same ID under two `--root`s gets two
// cgroups. An empty `state_root` gives the bare ID. IDs too long for one path component
// (255 bytes) are cut and hashed together with the root.
std::string default_cgroup_name(const std::string& container_id, const std::string& state_root);

// Makes a path from /proc/self/cgroup relative to a hierarchy mounted with `mount_root`
// (mountinfo field 4): "/docker/x/y" with mount root "/docker/x" -> "/y".
std::string own_path_in_mount(const std::string& proc_path, const std::string& mount_root);

// The runtime's own path in hierarchy `h`, found in parsed /proc/self/cgroup; "/" when absent.
std::string own_path_for(const Hierarchy& h, const std::vector<ProcCgroup>& self);

// Normalises "a//b/./c/" to "/a/b/c"; a ".." component is an error (no escaping the hierarchy).
Result<std::string> clean_path(const std::string& path);

}  // namespace vessel::cgroups
