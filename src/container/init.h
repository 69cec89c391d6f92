// The container's init before it becomes the user's process: runs in the
// cloned child, reports every failure to the parent over the sync socket.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "container/rootfs.h"
#include "container/seccomp.h"
#include "container/sync.h"
#include "oci/spec.h"

namespace vessel::container {

struct InitContext {
  const oci::Spec* spec = nullptr;
  RootfsPlan rootfs;
  bool no_pivot = false;
  bool no_new_keyring = false;
  bool join_user_ns = false;   // user namespace joined by path: setns it, then unshare the rest
  int unshare_flags = 0;       // namespaces the child creates itself (cgroup, or all after a user join)
  std::vector<std::pair<oci::NamespaceType, int>> join;  // namespaces to setns, by fd
  int console_socket = -1;
  int fifo = -1;               // O_PATH fd of exec.fifo
  int preserve_fds = 0;
  SyncSocket* sync = nullptr;
  std::optional<SeccompProgram> seccomp;  // compiled by the parent (linux.seccomp)
  std::vector<int> close_fds;  // the parent's fds the child must drop at once (the state lock)
};

// Never returns: execs the process or exits non-zero after reporting.
[[noreturn]] void container_init(const InitContext& ctx);

}  // namespace vessel::container
