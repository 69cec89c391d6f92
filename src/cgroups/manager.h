// The cgroup interface the container runtime uses: create a container's cgroups,
// apply limits, move processes in, freeze, kill, destroy. Works on v1, v2 and
// hybrid hosts (v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified).
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "cgroups/cgroup_dir.h"
#include "cgroups/layout.h"
#include "cgroups/oom_notify.h"
#include "cgroups/stats.h"
#include "common/error.h"
#include "oci/resources.h"

namespace vessel::cgroups {

class DeviceProgramInstaller;  // device_filter.h

struct Options {
  std::string cgroups_path;  // linux.cgroupsPath, may be empty
  std::string container_id;
  std::string state_root;    // --root, absolute: part of the default cgroup name (paths.h)
  // Where cgroup filesystems are mounted. Tests pass a temp dir: mount points
  // under /sys/fs/cgroup in the mountinfo are moved below it.
  std::string root = "/sys/fs/cgroup";
  std::string mountinfo;    // mountinfo text; empty: /proc/self/mountinfo
  std::string proc_cgroup;  // /proc/self/cgroup text; empty: read it
  WriteLog* write_log = nullptr;  // tests: receives every control-file write
  // v2 device rules: where the eBPF programs go; nullptr: the kernel (bpf(2)).
  DeviceProgramInstaller* device_installer = nullptr;
};

class Manager {
 public:
  virtual ~Manager() = default;

  // Resolves the container's path in every hierarchy (see paths.h: absolute cgroupsPath
  // is relative to each hierarchy's mount point, a relative one to the runtime's own
  // cgroup, empty gives "/vessel/<id>-<hash of the state root>") and records which
  // directories are missing: those are the ones vessel will create and own. Creates
  // nothing. Refuses, as runc does, the root cgroup of a hierarchy, and an existing
  // cgroup that has processes or is frozen (it belongs to someone else).
  static Result<std::unique_ptr<Manager>> plan(const Options& options);
  // plan() then make().
  static Result<std::unique_ptr<Manager>> create(const Options& options);
  // Creates the directories plan() found missing (recording the ones really made). On v1
  // new cpuset cgroups get their parent's cpus/mems; on v2 the parents' controllers are
  // enabled. On failure what it made is removed again.
  virtual Status make() = 0;
  // True when the container's cgroup was created by vessel in every hierarchy: then
  // every process in it is the container's, and destroy() removes it.
  virtual bool owned() const = 0;
  // Re-opens an existing container's cgroups from what save() produced.
  static Result<std::unique_ptr<Manager>> load(const std::string& saved);
  // A JSON text for the state file.
  virtual std::string save() const = 0;

  virtual Layout layout() const = 0;

  // Writes the set fields of `resources` (creation and `update`). Each controller is
  // used where the host has it, v1 first (hybrid: hugetlb and `unified` go to the v2
  // cgroup). A set field whose controller the host lacks is an error naming the field.
  // Device rules go to the v1 devices controller where there is one, else become an
  // eBPF program on the v2 cgroup that replaces the one a previous apply() attached.
  virtual Status apply(const oci::LinuxResources& resources) = 0;
  // Moves a process (and not its threads' siblings elsewhere) into every hierarchy.
  virtual Status add_process(pid_t pid) = 0;

  // v1 freezer.state (waits until FROZEN); v2 cgroup.freeze (waits for "frozen 1").
  virtual Status freeze() = 0;
  virtual Status thaw() = 0;
  virtual Result<bool> frozen() const = 0;

  // All processes of the container's cgroup and its descendants.
  virtual Result<std::vector<pid_t>> pids() const = 0;
  // SIGKILL with the freezer on v2: cgroup.kill when the kernel has it. Otherwise
  // freezes (when possible), signals every pid, and thaws (a paused container stays
  // paused for signals other than SIGKILL).
  virtual Status kill_all(int sig) = 0;
  // Removes the container's cgroup (with any sub-cgroups) in every hierarchy where vessel
  // created it, and the parents it made when they are empty; a cgroup vessel did not
  // create is never touched. Retries EBUSY (exiting processes) briefly; idempotent.
  virtual Status destroy() = 0;

  // For mounting cgroupfs inside a container: one entry per hierarchy.
  struct Mount {
    std::string mountpoint;  // the host's mount point, e.g. /sys/fs/cgroup/cpu
    std::string fstype;      // "cgroup" or "cgroup2"
    std::string options;     // v1: the controllers, "cpu,cpuacct" or "name=systemd"; v2: ""
    std::string path;        // the container's cgroup inside it, e.g. /vessel/c1
  };
  virtual std::vector<Mount> mounts() const = 0;

  // The container's cgroup directory in the hierarchy holding `controller`
  // ("memory", "pids"...; "" for the v2 cgroup), or "" when there is none. For stats and tests.
  virtual std::string dir_for(const std::string& controller) const = 0;

  // Resource usage (runc's `events --stats` data), each controller read from the
  // hierarchy that has it. Errors when the cgroup is gone.
  virtual Result<Stats> stats() const = 0;
  // How many processes the OOM killer has ended in the container's memory cgroup
  // (v1 memory.oom_control, v2 memory.events). Errors without a memory controller
  // or on kernels without the counter.
  virtual Result<uint64_t> oom_kill_count() const = 0;
  // A descriptor that wakes a watcher when the OOM-kill count may have changed (see oom_notify.h).
  virtual Result<OomNotifier> notify_oom() const = 0;
};

}  // namespace vessel::cgroups
