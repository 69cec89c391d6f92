// The state of containers under --root: one directory per container holding
// state.json (written atomically, first right after the directory is made and
// again at each step of create), exec.fifo while created-but-not-started, and a
// lock file (flock: released when its holder dies) that serialises commands on
// the same container. A create killed half-way leaves a directory that list,
// state and delete still see: its status is "stopped" once no one holds the lock.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::container {

enum class ContainerStatus { kCreating, kCreated, kRunning, kPaused, kStopped };
const char* status_name(ContainerStatus s);

// What state.json records about a container (runc's fields plus our own).
struct State {
  std::string oci_version;
  std::string id;
  pid_t pid = 0;
  uint64_t pid_start_time = 0;  // /proc/<pid>/stat field 22, guards against pid reuse
  std::string bundle;
  std::string rootfs;
  std::string created;  // RFC 3339 with nanoseconds
  std::string owner;
  std::map<std::string, std::string> annotations;
  std::string cgroup;    // cgroups::Manager::save(): paths, and which ones vessel created
  bool own_pid_ns = true;  // killing pid 1 ends every process
  bool systemd_cgroup = false;
  std::string root;        // the absolute --root this container belongs to
  bool creating = true;    // until create has finished; "creating" or, once its creator is gone, "stopped"
  // Without a mount namespace: the mount ID of the rootfs bind under which the config's
  // mounts were made in the runtime's namespace (host_rootfs_tree()); delete detaches it.
  uint64_t host_mount_id = 0;
};

// Validates a container ID the way runc does: [A-Za-z0-9_+.-], not "." or "..", at most 1024 characters.
Status validate_id(const std::string& id);

// Reads /proc/<pid>/stat's start time; 0 when the process is gone.
uint64_t process_start_time(pid_t pid);
// True when `pid` exists, is not a zombie and started at `start_time`.
bool process_alive(pid_t pid, uint64_t start_time);

// A container directory under the state root, locked for the lifetime of this object.
class ContainerDir {
 public:
  // Creates <root>/<id> (an error if it exists: duplicate id) and locks it.
  static Result<ContainerDir> create(const std::string& root, const std::string& id);
  // Opens and locks an existing container; an error naming the id if there is none.
  // Waits while another command holds the lock.
  static Result<ContainerDir> open(const std::string& root, const std::string& id);
  // Removes <root>/.tmp/<id>, what a create killed before its directory got its name
  // leaves, unless a create holds it. Nothing there is fine.
  static Status remove_stale(const std::string& root, const std::string& id);
  // Reads a container's state without taking the lock (list, state): never waits for
  // a create in progress. *busy tells whether another live process holds the lock.
  static Result<State> peek(const std::string& root, const std::string& id, bool* busy);

  const std::string& path() const { return path_; }
  // The fd holding the lock: a child that must not keep the lock closes it.
  int lock_fd() const { return lock_.get(); }
  std::string fifo_path() const { return path_ + "/exec.fifo"; }

  // state.json; a directory without one (killed before its first write, or during
  // delete) gives a State with only the id, still `creating`.
  Result<State> load() const;
  Status save(const State& s) const;
  // Removes the directory and everything in it, state.json last but the lock.
  Status remove();

 private:
  ContainerDir(std::string path, UniqueFd lock) : path_(std::move(path)), lock_(std::move(lock)) {}
  std::string path_;
  UniqueFd lock_;
};

// IDs of all containers under root, sorted: every directory holding state.json or
// a lock file, also those a killed command left half-made.
std::vector<std::string> list_ids(const std::string& root);

// The live status: creating while `s.creating` and `creator_alive` (someone holds the
// lock); stopped when create never finished or the init is gone; created while
// exec.fifo exists; paused when `frozen`; else running.
ContainerStatus live_status(const State& s, const std::string& dir, bool frozen, bool creator_alive = false);

// runc's `state` JSON for a container.
std::string state_json(const State& s, ContainerStatus status, bool pretty = true);

}  // namespace vessel::container
