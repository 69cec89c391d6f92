// The container's filesystem view: config mounts in order, /dev, pivot_root,
// then masked and read-only paths. Runs in the init, in its mount namespace.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "oci/spec.h"

namespace vessel::container {

// One cgroup hierarchy as the container should see it at a "cgroup" mount.
struct CgroupMount {
  std::string mountpoint;  // host mount point, e.g. /sys/fs/cgroup/memory
  std::string fstype;      // cgroup or cgroup2
  std::string options;     // e.g. "memory" (v1 controllers)
  std::string path;        // the container's cgroup inside that hierarchy
};

struct RootfsPlan {
  const oci::Spec* spec = nullptr;
  std::string rootfs;   // absolute host path
  std::string bundle;   // for relative bind sources
  bool in_userns = false;
  bool new_cgroupns = false;
  std::vector<CgroupMount> cgroups;
  // With a user namespace: for each config mount, an O_PATH fd of its bind source, opened
  // by the runtime with the host's credentials in the container's mount namespace (-1 for
  // the others), so that a source the container's root may not reach can still be bound.
  std::vector<int> source_fds;
  // No mount namespace of its own: the mounts are made in the runtime's, under the bind
  // of the rootfs that create made there (host_rootfs_tree()); "/" and its propagation are
  // left as they are.
  bool host_namespace = false;
};

// Without a mount namespace of its own the container shares the runtime's (runtime-spec),
// and its config's mounts are made there, as runc makes them. vessel makes them all under
// one recursive bind of the rootfs on itself, which delete detaches whole, so that nothing
// stays on the host (runc leaves them). The bind is made detached first: its mount ID goes
// into the state before it is attached, so a create killed at any point leaves either
// nothing (the detached tree dies with the process) or a mount delete knows as its own.
struct HostRootfsTree {
  UniqueFd tree;          // detached until attach_host_rootfs_tree()
  uint64_t mount_id = 0;  // the kernel's mount ID (statx STX_MNT_ID)
};
Result<HostRootfsTree> host_rootfs_tree(const std::string& rootfs);
Status attach_host_rootfs_tree(const HostRootfsTree& t, const std::string& rootfs);
// Detaches the bind `mount_id` from `rootfs` (and everything mounted under it) when it is
// still the mount on top there; a bind gone already is fine, one covered by another mount
// is reported and left.
Status detach_host_rootfs_tree(const std::string& rootfs, uint64_t mount_id);

// Sets propagation, bind-mounts the rootfs on itself, performs every config
// mount and creates /dev. Before pivot_root; host paths still visible.
Status prepare_rootfs(const RootfsPlan& plan);

// Makes the rootfs "/" (pivot_root, or chroot with --no-pivot).
Status enter_rootfs(const std::string& rootfs, bool no_pivot);

// After pivot_root: sysctls, masked and read-only paths, read-only root.
Status finalize_rootfs(const oci::Spec& spec, bool in_userns);

// Last: the tmpfs mounts and /dev the config wants read-only, mounted writable until now
// so that /dev's nodes, the mounts below them and the console could be made (as runc).
Status remount_readonly_mounts(const oci::Spec& spec);

}  // namespace vessel::container
