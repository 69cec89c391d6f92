// An image's User ("name", "uid", "name:group", "uid:gid", …) resolved the way
// podman and Docker do: names through the image's own /etc/passwd and
// /etc/group (read inside the rootfs, symlinks resolved inside it), the primary
// group from passwd, supplementary groups from /etc/group.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace vessel::image {

struct ResolvedUser {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
};

// Resolves `user` against the rootfs whose directory fd is rootfs_fd ("" is root).
// A name that is not in the image is an error naming it; numeric ids need no entry.
Result<ResolvedUser> resolve_user(int rootfs_fd, const std::string& user);

// The same from the texts of /etc/passwd and /etc/group (pure; for tests and fuzzing).
Result<ResolvedUser> resolve_user_from(const std::string& user, const std::string& passwd, const std::string& group);

}  // namespace vessel::image
