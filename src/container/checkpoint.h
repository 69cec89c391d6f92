// runc's `checkpoint` and `restore` through CRIU (see criu_rpc.h): a running container's
// process tree is dumped to an image directory and later recreated, under the same or
// another ID, in a fresh cgroup, with its mounts, namespaces and memory as they were.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/error.h"

namespace vessel::container {

// What CRIU is told to do, shared by both verbs (runc's flags).
struct CriuFlags {
  std::string image_path;   // --image-path (default: ./checkpoint)
  std::string work_path;    // --work-path: logs and temporary files (default: the image dir)
  bool tcp_established = false;
  bool ext_unix_sk = false;
  bool shell_job = false;
  bool file_locks = false;
  bool lazy_pages = false;
  bool auto_dedup = false;
  std::string manage_cgroups_mode;  // soft, full, strict, ignore ("": CRIU's default)
  std::string empty_ns;             // "network": create the namespace, restore nothing into it
  int status_fd = -1;               // --status-fd (lazy pages: a byte when the page server is ready)
};

struct CheckpointOptions {
  std::string root;  // --root
  std::string id;
  CriuFlags criu;
  std::string parent_path;  // --parent-path: a pre-dump, relative to the image path
  bool leave_running = false;
  bool pre_dump = false;
};

// Dumps the container. Unless it leaves it running (--leave-running, --pre-dump), the
// container is then removed as `delete` would (runc does the same): its processes are
// gone, and `restore` brings it back. On failure the container runs on, untouched.
Status checkpoint(const CheckpointOptions& o);

struct RestoreOptions {
  std::string root;
  std::string id;
  std::string bundle;
  CriuFlags criu;
  std::string console_socket;
  std::string pid_file;
  bool detach = false;
  bool no_subreaper = false;
  bool no_pivot = false;  // accepted for runc's command line; CRIU pivots into the rootfs itself
  bool systemd_cgroup = false;
};

// Recreates a container from a checkpoint. With `detach` returns 0 once it runs;
// otherwise waits for it (forwarding signals), removes it and returns its exit status.
// On failure nothing is left: no state, cgroup, mount or process.
Result<int> restore(const RestoreOptions& o);

}  // namespace vessel::container
