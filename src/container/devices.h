// /dev inside the container: the default devices every container gets,
// linux.devices, and the standard symlinks.
#pragma once

#include <vector>

#include "common/error.h"
#include "oci/spec.h"

namespace vessel::container {

// null, zero, full, random, urandom, tty (mode 0666, root-owned), as runc and crun create them.
std::vector<oci::Device> default_devices();

// Creates `devices` under the rootfs (rootfd is its "/"). In a user namespace
// mknod is not allowed, so the host's device node is bind-mounted instead.
Status create_devices(int rootfd, const std::vector<oci::Device>& devices, bool bind_from_host);

// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx -> pts/ptmx.
Status create_dev_symlinks(int rootfd);

}  // namespace vessel::container
