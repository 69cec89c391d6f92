// Device access control on cgroup v2: an eBPF program of type
// BPF_PROG_TYPE_CGROUP_DEVICE, attached to the container's cgroup, that the kernel
// runs on every open and mknod of a device node. cgroup v2 has no devices.allow.
//
// device_filter_program() builds the program from linux.resources.devices (pure, unit
// tested with an interpreter); install_device_program() loads and attaches it.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "oci/resources.h"

namespace vessel::cgroups {

// The program's name as the kernel shows it (bpftool prog, BPF_OBJ_GET_INFO_BY_FD):
// update() detaches only programs with this name.
inline constexpr const char kDeviceProgramName[] = "vessel_devices";

// The eBPF program implementing `rules` with the semantics of the v1 devices
// controller as runc writes them: the rules are checked in order and the last one that
// matches the access decides; an access no rule matches is denied. A rule matches when
// its type is "a" (any, major and minor ignored) or equals the device's, its major and
// minor are unset/-1 or equal, and, for an allow rule, the access asked for (r, w, m, or
// r+w at once for O_RDWR) is a subset of its access; for a deny rule, shares a bit with it
// (as the v1 controller does: "deny w" refuses O_RDWR too; runc's and crun's programs
// let that through). Returns 1 to allow, 0 to deny. Errors on a malformed rule
// (type other than a/c/b, access other than r/w/m, a number out of range).
Result<std::vector<bpf_insn>> device_filter_program(const std::vector<oci::LinuxDeviceCgroup>& rules);

// Where device programs go: the real kernel, or a test's recorder.
class DeviceProgramInstaller {
 public:
  virtual ~DeviceProgramInstaller() = default;
  // Makes `program` the only vessel device program of the cgroup directory `cgroup_dir`:
  // attaches it (BPF_F_ALLOW_MULTI), then detaches the ones attached before, so the
  // cgroup is never without a filter.
  virtual Status install(const std::string& cgroup_dir, const std::vector<bpf_insn>& program) = 0;
};

// The installer using bpf(2); needs CAP_BPF or CAP_SYS_ADMIN.
DeviceProgramInstaller& kernel_device_installer();

}  // namespace vessel::cgroups
