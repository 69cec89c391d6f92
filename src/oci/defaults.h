// What `vessel spec` writes and what `vessel features` reports.
#pragma once

#include <sys/types.h>

#include <string>

namespace vessel::oci {

// A default config.json like runc's; `rootless` maps the caller's uid/gid to root in a user namespace.
std::string default_spec_json(bool rootless, uid_t uid, gid_t gid);

// The runtime-spec "features" document (features.md) for this build.
std::string features_json();

}  // namespace vessel::oci
