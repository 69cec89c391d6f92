// Network interface wrappers (ioctl on an AF_INET socket) for the caller's network namespace.
#pragma once

#include <string>

#include "common/error.h"

namespace vessel::sys {

// Sets the network interface `name` of the caller's network namespace up
// (SIOCGIFFLAGS/SIOCSIFFLAGS); used for `lo` in a namespace the runtime created.
Status set_link_up(const std::string& name);

}  // namespace vessel::sys
