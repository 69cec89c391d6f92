// cpuset controller: cpuset.cpus and cpuset.mems (same names on v1 and v2).
#include "cgroups/controllers.h"

namespace vessel::cgroups {

bool cpuset_is_set(const oci::LinuxCpu& c) { return (c.cpus && !c.cpus->empty()) || (c.mems && !c.mems->empty()); }

Status apply_cpuset(const CgroupDir& dir, const oci::LinuxCpu& c) {
  if (c.cpus && !c.cpus->empty()) TRY(dir.write("cpuset.cpus", *c.cpus));
  if (c.mems && !c.mems->empty()) TRY(dir.write("cpuset.mems", *c.mems));
  return ok();
}

Status copy_cpuset_from_parent(const CgroupDir& dir, const CgroupDir& parent) {
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    if (!TRY(dir.read(file)).empty()) continue;
    auto value = TRY(parent.read(file));
    TRY(dir.write(file, value));
  }
  return ok();
}

}  // namespace vessel::cgroups
