// OCI hooks: each runs with the container state JSON on stdin, its own args and env
// (the runtime's environment when it has none, as runc and crun), in a given working
// directory, and an optional timeout after which it is killed.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "oci/spec.h"

namespace vessel::container {

// Runs one hook with `cwd` as its working directory (empty: ours) and waits for it;
// a non-zero exit, a signal or a timeout is an error, which holds what the hook wrote
// (its stdout and stderr are collected, as runc collects them). A hook without an env
// gets `default_env` when given, else the runtime's environment.
Status run_hook(const oci::Hook& hook, const std::string& state_json, const std::string& cwd = "",
                const std::vector<std::string>* default_env = nullptr);
// Runs hooks in order; stops at the first failure, naming the kind and index as runc does
// ("error running createRuntime hook #1").
Status run_hooks(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind,
                 const std::string& cwd = "");
// The same, hooks without an env of their own getting `default_env` (startContainer: the
// process's, as runc's hooks have always had it).
Status run_hooks_with_env(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind,
                          const std::string& cwd, const std::vector<std::string>* default_env);
// Runs every hook even when some fail (poststart, poststop: runtime-spec says the rest still
// run); each failure is logged as a warning of `component`.
void run_hooks_logged(const std::vector<oci::Hook>& hooks, const std::string& state_json, const char* kind,
                      const std::string& cwd, const char* component);

}  // namespace vessel::container
