// COPY and ADD: files from a SourceRoot into the rootfs of a build step.
// The destination is resolved inside the rootfs (RESOLVE_IN_ROOT), entries are
// created with *at() calls below directory fds and never through a symlink, so
// a hostile base image cannot redirect the copy onto the host.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "image/build/sources.h"

namespace vessel::image::build {

struct CopyOptions {
  std::optional<uint32_t> uid, gid;  // --chown; else 0:0 from the context, kept from a stage
  std::optional<mode_t> mode;        // --chmod
  bool extract_archives = false;     // ADD: a local tar (any compression) is unpacked into the destination
};

// Copies `rels` of `src` to `dest` (absolute, in the rootfs rootfs_fd). `dest` is a directory
// when it ends in "/", there are several sources, or it already is one; a directory source
// copies its contents.
Status copy_into(const SourceRoot& src, const std::vector<std::string>& rels, int rootfs_fd, const std::string& dest,
                 const CopyOptions& o);

}  // namespace vessel::image::build
