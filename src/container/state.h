// The state of containers under --root: one directory per container holding
// state.json (written atomically), exec.fifo while created-but-not-started, and
// a lock file that serialises commands on the same container.
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
  std::string cgroup;    // cgroups::Manager::save()
  bool own_pid_ns = true;  // killing pid 1 ends every process
  bool systemd_cgroup = false;
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
  static Result<ContainerDir> open(const std::string& root, const std::string& id);

  const std::string& path() const { return path_; }
  // The fd holding the lock: a child that must not keep the lock closes it.
  int lock_fd() const { return lock_.get(); }
  std::string fifo_path() const { return path_ + "/exec.fifo"; }

  Result<State> load() const;
  Status save(const State& s) const;
  // Removes the directory and everything in it.
  Status remove();

 private:
  ContainerDir(std::string path, UniqueFd lock) : path_(std::move(path)), lock_(std::move(lock)) {}
  std::string path_;
  UniqueFd lock_;
};

// IDs of all containers under root, sorted.
std::vector<std::string> list_ids(const std::string& root);

// The live status: stopped when the init is gone; created while exec.fifo exists;
// paused when `frozen`; else running.
ContainerStatus live_status(const State& s, const std::string& dir, bool frozen);

// runc's `state` JSON for a container.
std::string state_json(const State& s, ContainerStatus status, bool pretty = true);

}  // namespace vessel::container
