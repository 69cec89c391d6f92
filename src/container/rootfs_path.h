// Resolving paths inside a container's rootfs without ever leaving it:
// every lookup goes through openat2(RESOLVE_IN_ROOT), so a symlink in the
// rootfs (even one swapped in while we work) resolves inside the rootfs
// (CVE-2021-30465, CVE-2023-27561). Mounts then target the resolved object
// through /proc/self/fd/N.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::container {

// The absolute path of the config's root.path, as runc checks it: a relative path is
// taken from the bundle's real directory, and the result must not go through a
// symlink (a root.path that is a link to a host directory is refused) and must be a directory.
Result<std::string> resolve_root_path(const std::string& bundle, const std::string& root_path);

// Opens `path` (interpreted with `rootfd` as "/") with O_PATH unless `flags` says otherwise.
Result<UniqueFd> open_in_root(int rootfd, const std::string& path, int flags);

// mkdir -p of `path` inside the root; returns an O_PATH fd of the directory.
Result<UniqueFd> mkdir_in_root(int rootfd, const std::string& path, mode_t mode = 0755);

// Ensures a regular file exists at `path` inside the root (parents created); returns an O_PATH fd.
Result<UniqueFd> mkfile_in_root(int rootfd, const std::string& path, mode_t mode = 0644);

// Splits "/a/b/c" into "/a/b" and "c".
std::pair<std::string, std::string> split_parent(const std::string& path);

// Opens a file under a procfs mount (`procfd` is its root) refusing symlinks and
// mount crossings, and checks it really is procfs (CVE-2025-52881).
Result<UniqueFd> open_proc_file(int procfd, const std::string& rel, int flags);
// Checks that fd is on a procfs.
Status check_procfs(int fd, const std::string& what);

}  // namespace vessel::container
