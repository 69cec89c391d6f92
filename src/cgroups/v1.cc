// cgroup v1 specifics of creating a container's cgroup.
#include "cgroups/controllers.h"
#include "cgroups/fs_manager.h"
#include "common/strings.h"

namespace vessel::cgroups {

Status create_v1(HierarchyDir& h, WriteLog* log) {
  TRYC(make_dirs(h), cat("create cgroup ", h.path, " in ", h.mountpoint));
  if (h.holds("cpuset")) {
    // A process cannot join a cpuset cgroup with empty cpus/mems: fill them in from
    // the parent, at every level from the mount point down.
    std::string parent = h.mountpoint;
    for (const auto& part : split(h.path, '/')) {
      if (part.empty()) continue;
      std::string cur = cat(parent, "/", part);
      TRYC(copy_cpuset_from_parent(CgroupDir(cur, log), CgroupDir(parent, log)), cat("initialise cpuset of ", cur));
      parent = cur;
    }
  }
  return ok();
}

}  // namespace vessel::cgroups
