// net_cls and net_prio (cgroup v1 only).
#include "cgroups/controllers.h"
#include "common/strings.h"

namespace vessel::cgroups {

bool is_set(const oci::LinuxNetwork& n) { return n.class_id || !n.priorities.empty(); }

Status apply_net_cls_v1(const CgroupDir& dir, const oci::LinuxNetwork& n) {
  if (n.class_id) TRY(dir.write("net_cls.classid", std::to_string(*n.class_id)));
  return ok();
}

Status apply_net_prio_v1(const CgroupDir& dir, const oci::LinuxNetwork& n) {
  for (const auto& p : n.priorities) {
    if (p.name.empty() || p.name.find_first_of(" \n") != std::string::npos)
      return Error::invalid(cat("linux.resources.network.priorities: invalid interface name \"", p.name, "\""));
    TRY(dir.write("net_prio.ifpriomap", cat(p.name, " ", p.priority)));
  }
  return ok();
}

}  // namespace vessel::cgroups
