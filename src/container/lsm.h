// SELinux and AppArmor labels of a container: process.selinuxLabel, process.apparmorProfile
// and linux.mountLabel. Applied where the host has the LSM; asked for on a host without
// it, they are refused at create (as runc 1.1 refuses them there), never silently dropped.
#pragma once

#include <string>

#include "common/error.h"
#include "oci/spec.h"

namespace vessel::container {

// True when SELinux is enabled (selinuxfs is mounted and says so).
bool selinux_enabled();
// True when AppArmor is enabled (/sys/module/apparmor/parameters/enabled is "Y").
bool apparmor_enabled();

// Refuses labels the host cannot apply, naming the field.
Status check_security_labels(const oci::Spec& spec);

// The LSM labels the next execve takes on (process.selinuxLabel, process.apparmorProfile),
// written to /proc/thread-self/attr; nothing when the process asks for none.
Status set_security_labels(const oci::Process& p);

// `data` with the SELinux context option of linux.mountLabel appended (unchanged without one).
std::string with_mount_label(const std::string& data, const std::string& label);

}  // namespace vessel::container
