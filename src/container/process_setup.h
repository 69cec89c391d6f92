// Turning the init (or an exec'd process) into the configured process:
// rlimits, user and groups, capabilities, executable lookup, execve.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "container/seccomp.h"
#include "oci/spec.h"

namespace vessel::container {

// --preserve-fds N: 0 <= N and 3 + N <= RLIMIT_NOFILE (no fd can be above it), else an error naming the flag.
Status check_preserve_fds(int n);

Status apply_rlimits(const std::vector<oci::Rlimit>& rlimits);

// Drops the bounding set, switches uid/gid/groups keeping capabilities, then
// sets effective/permitted/inheritable and raises the ambient ones that are in both
// permitted and inheritable (others are ignored, as by runc). An absent
// capabilities object means no capabilities at all.
Status set_user_and_capabilities(const oci::Process& p);

// Checks, before the init reports ready, that set_user_and_capabilities() can succeed
// with what this process holds now (effective within permitted, inheritable within
// bounding, permitted held), so a capset failure is a create error.
Status check_capabilities(const oci::Process& p);

// Finds args[0] the way execvp would, but with PATH from the process's env.
Result<std::string> find_executable(const oci::Process& p);

// chdir to process.cwd and check we did not end up outside the root (CVE-2024-21626).
Status enter_cwd(const std::string& cwd);

// Marks every fd from 3 + preserve_fds on close-on-exec, then execve with process.env
// (plus HOME from the container's /etc/passwd, else "/", when the env has none).
// Returns only on failure.
Error exec_process(const std::string& path, const oci::Process& p, int preserve_fds);
// The home directory of `uid` in /etc/passwd (the container's, once in its root); "/" when none.
std::string home_of(uint32_t uid);
// The environment a process gets, as runc builds it: one entry per name (the last one's
// value, in the order of the last ones), HOME from `home()` when missing or empty.
std::vector<std::string> process_env(const std::vector<std::string>& env, const std::function<std::string()>& home);

// The last steps before execve, in runc's order: without no_new_privs the
// seccomp filter is loaded while we still have CAP_SYS_ADMIN, then the user
// and capabilities are set; with it, no_new_privs and the filter come last.
// Returns only on failure.
Error finish_process(const std::string& path, const oci::Process& p, const std::optional<SeccompProgram>& seccomp,
                     int preserve_fds);

// finish_process() without the execve: fds from 3 + preserve_fds marked close-on-exec, the
// SELinux/AppArmor exec labels, the filter, user, capabilities and no_new_privs.
Status become_process(const oci::Process& p, const std::optional<SeccompProgram>& seccomp, int preserve_fds);

}  // namespace vessel::container
