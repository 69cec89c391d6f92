// OCI hooks: each runs with the container state JSON on stdin, its own args
// and env, and an optional timeout after which it is killed.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "oci/spec.h"

namespace vessel::container {

// Runs one hook and waits for it; a non-zero exit, a signal or a timeout is an error.
Status run_hook(const oci::Hook& hook, const std::string& state_json);
// Runs hooks in order; stops at the first failure, naming the kind and index ("createRuntime[1]").
Status run_hooks(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind);

}  // namespace vessel::container
