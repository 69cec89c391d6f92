// Checks of a parsed config that refuse what runc refuses: values the kernel
// would silently read differently (uid -1, a NUL that truncates a string) and
// settings that would change the host rather than the container (sysctls of
// namespaces the container does not own).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace vessel::oci {

struct Process;
struct Spec;
struct Linux;
struct Hook;

// The largest uid/gid a process may get: 4294967295 is (uid_t)-1, which set*id
// reads as "leave unchanged" (the process would stay root).
inline constexpr uint64_t kMaxId = 4294967294ULL;

// `value` of `field` is a usable uid/gid (0..4294967294); the error names the field.
Status check_id(uint64_t value, const std::string& field);

// args and env of a process or hook: no NUL inside (execve would truncate),
// every env entry "KEY=VALUE" with a non-empty key. `path` is e.g. "process".
Status check_exec_strings(const std::vector<std::string>& args, const std::vector<std::string>& env,
                          const std::string& path);

// process.user ids, args and env.
Status validate_process(const Process& p, const std::string& path);

// linux.sysctl, as runc's validator: IPC sysctls need a new ipc namespace,
// net.* a network namespace that is not the host's, kernel.domainname a uts
// namespace (kernel.hostname conflicts with the hostname field); any other
// (vm.*, kernel.printk_ratelimit, ...) is not namespaced and is refused.
Status validate_sysctl(const Linux& lx);

}  // namespace vessel::oci
