// What `vessel spec` writes and what `vessel features` reports.
#pragma once

#include <sys/types.h>

#include <string>

namespace vessel::oci {

// A default config.json: what `runc spec` writes (namespaces, capabilities with the ambient set,
// no seccomp, no cgroup namespace). `rootless` maps the caller's uid/gid to root in a user
// namespace; `hardened` adds vessel's own defaults: a cgroup namespace, the default seccomp
// profile, and no ambient capabilities.
std::string default_spec_json(bool rootless, bool hardened, uid_t uid, gid_t gid);

// The runtime-spec "features" document (features.md) for this build.
std::string features_json();

}  // namespace vessel::oci
