// pids controller: pids.max (v1 and v2).
#include "cgroups/controllers.h"

namespace vessel::cgroups {

Status apply_pids(const CgroupDir& dir, const oci::LinuxPids& p) {
  if (!p.limit) return ok();
  return dir.write("pids.max", *p.limit > 0 ? std::to_string(*p.limit) : std::string("max"));
}

}  // namespace vessel::cgroups
