// Wall-clock timestamps as the OCI state and runc's logs write them.
#pragma once

#include <string>

namespace vessel {

// Now, UTC, RFC 3339 with nanoseconds: "2026-11-24T12:00:00.123456789Z".
std::string rfc3339_now();

}  // namespace vessel
