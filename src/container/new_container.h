// What `create` and `restore` both do before a container has a process: its first
// state and its cgroup, each saved as soon as it exists, and the guard that undoes them
// when the verb fails halfway.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "cgroups/manager.h"
#include "common/error.h"
#include "container/state.h"
#include "oci/spec.h"

namespace vessel::container {

// Where a new container comes from and where its state goes.
struct NewContainer {
  std::string id;
  std::string bundle;  // absolute
  std::string rootfs;  // absolute, resolved from the config's root.path
  std::string root;    // absolute state root (--root)
  bool systemd_cgroup = false;
};

// The first state of a container made from `spec`: still `creating`, no process.
State initial_state(const oci::Spec& spec, const NewContainer& c);

// Plans and makes the container's cgroup (linux.cgroupsPath, or vessel/<id>). The
// directories about to be made are saved in `state` (written to `dir`) before they are
// made and again after, so that a runtime killed anywhere leaves what `delete` removes.
Result<std::unique_ptr<cgroups::Manager>> make_cgroup(const oci::Spec& spec, const ContainerDir& dir, State& state);

// What a create or restore holds until it has succeeded: its init (killed and reaped)
// and its cgroup (destroyed), unless released.
struct PendingContainer {
  pid_t pid = -1;
  std::unique_ptr<cgroups::Manager> cgroup;
  // The rootfs bind made in the runtime's mount namespace (no mount namespace of its own).
  std::string rootfs;
  uint64_t host_mount_id = 0;
  PendingContainer() = default;
  PendingContainer(const PendingContainer&) = delete;
  PendingContainer& operator=(const PendingContainer&) = delete;
  ~PendingContainer();
  // The container is made: the process and cgroup stay (only the handles go).
  void release();
};

}  // namespace vessel::container
