// FsManager: the Manager over mounted cgroup filesystems. One implementation for
// the three layouts: it holds the v1 hierarchies (none on v2 hosts) and the v2
// cgroup (none on v1 hosts); each controller is used where the host has it,
// v1 first. The version-specific parts live in v1.cc and v2.cc.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cgroups/manager.h"

namespace vessel::cgroups {

// The container's cgroup in one hierarchy.
struct HierarchyDir {
  int version = 1;
  std::string mountpoint;
  std::vector<std::string> controllers;  // v1 only
  std::string path;                      // inside the mount, e.g. /vessel/c1
  // Directories vessel made (after plan(): will make), outermost first. The
  // container owns its cgroup in this hierarchy when the last one is dir().
  std::vector<std::string> created;

  std::string dir() const { return path == "/" ? mountpoint : mountpoint + path; }
  bool holds(std::string_view controller) const;
  // True when vessel created (or is about to create) the container's cgroup here.
  bool owned() const { return !created.empty() && created.back() == dir(); }
};

class FsManager final : public Manager {
 public:
  FsManager(Layout layout, std::vector<HierarchyDir> v1, std::optional<HierarchyDir> v2, WriteLog* log,
            DeviceProgramInstaller* device_installer = nullptr)
      : layout_(layout), v1_(std::move(v1)), v2_(std::move(v2)), log_(log), device_installer_(device_installer) {}

  static Result<std::unique_ptr<FsManager>> plan(const Options& options);
  static Result<std::unique_ptr<FsManager>> load(const std::string& saved);

  Status make() override;
  bool owned() const override;
  std::string save() const override;
  Layout layout() const override { return layout_; }
  Status apply(const oci::LinuxResources& resources) override;
  Status add_process(pid_t pid) override;
  Status freeze() override;
  Status thaw() override;
  Result<bool> frozen() const override;
  Result<std::vector<pid_t>> pids() const override;
  Status kill_all(int sig) override;
  Status destroy() override;
  std::vector<Mount> mounts() const override;
  std::string dir_for(const std::string& controller) const override;
  Result<Stats> stats() const override;
  Result<uint64_t> oom_kill_count() const override;
  Result<OomNotifier> notify_oom() const override;
  // Where stats() reads each controller.
  StatsSources stats_sources() const;

 private:
  // The v1 hierarchy holding `controller`, if any.
  const HierarchyDir* v1_for(std::string_view controller) const;
  // Whether the v2 cgroup has `controller` (per its cgroup.controllers).
  bool v2_has(std::string_view controller) const;
  CgroupDir dir(const HierarchyDir& h) const { return CgroupDir(h.dir(), log_, journal_); }
  // One pass of apply(): checks or writes, per journal_.
  Status apply_pass(const oci::LinuxResources& resources);
  // Where the freezer is: the v1 freezer hierarchy, else the v2 cgroup.
  Result<CgroupDir> freezer_dir(int* version) const;

  Layout layout_;
  std::vector<HierarchyDir> v1_;
  std::optional<HierarchyDir> v2_;
  WriteLog* log_;
  DeviceProgramInstaller* device_installer_;  // nullptr: kernel_device_installer()
  WriteJournal* journal_ = nullptr;           // set while apply() runs
  mutable std::optional<std::vector<std::string>> v2_controllers_;  // cache of cgroup.controllers
};

// v1.cc: creates the container's directory in a v1 hierarchy (cpuset copied down).
Status create_v1(HierarchyDir& h, WriteLog* log);
// v2.cc: creates the container's v2 cgroup and enables the available controllers on the way down.
Status create_v2(HierarchyDir& h, WriteLog* log);
// Makes the missing directories of h.path below h.mountpoint, recording them in h.created.
Status make_dirs(HierarchyDir& h);
// The directories of h.path below h.mountpoint that do not exist yet, outermost first.
std::vector<std::string> missing_dirs(const HierarchyDir& h);

}  // namespace vessel::cgroups
