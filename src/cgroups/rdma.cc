// rdma controller: rdma.max lines "<device> hca_handle=N hca_object=M" (v1 and v2).
#include "cgroups/controllers.h"
#include "common/strings.h"

namespace vessel::cgroups {

Status apply_rdma(const CgroupDir& dir, const std::map<std::string, oci::LinuxRdma>& rdma) {
  for (const auto& [device, r] : rdma) {
    if (device.empty() || device.find_first_of(" \n") != std::string::npos)
      return Error::invalid(cat("linux.resources.rdma: invalid device name \"", device, "\""));
    std::string line = device;
    if (r.hca_handles) line += cat(" hca_handle=", *r.hca_handles);
    if (r.hca_objects) line += cat(" hca_object=", *r.hca_objects);
    if (line == device) continue;  // nothing set
    TRY(dir.write("rdma.max", line));
  }
  return ok();
}

}  // namespace vessel::cgroups
