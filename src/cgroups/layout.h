// Which cgroup filesystems a host has mounted, read from mountinfo.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace vessel::cgroups {

// kV1: only cgroup v1 hierarchies; kV2: only the unified hierarchy;
// kHybrid: v1 hierarchies plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
enum class Layout { kV1, kV2, kHybrid };

const char* layout_name(Layout layout);
Result<Layout> layout_from_name(std::string_view name);

// One mounted cgroup hierarchy.
struct Hierarchy {
  int version = 1;                       // 1 or 2
  std::string mountpoint;                // e.g. /sys/fs/cgroup/cpu
  std::string root;                      // the hierarchy path mounted there (mountinfo field 4), usually "/"
  std::vector<std::string> controllers;  // v1 only: "cpu", "cpuacct", "name=systemd"...
};

// All cgroup hierarchies of a mount table, one entry per hierarchy (bind mounts
// of a hierarchy already seen are skipped).
struct MountTable {
  Layout layout = Layout::kV2;
  std::vector<Hierarchy> v1;
  std::optional<Hierarchy> v2;
};

// Parses /proc/<pid>/mountinfo text. Errors when no cgroup filesystem is mounted.
Result<MountTable> parse_mountinfo(std::string_view text);

// The layout of a mountinfo text / of this process's mount namespace.
Result<Layout> detect_layout(std::string_view mountinfo);
Result<Layout> detect_layout();

// Parses /proc/<pid>/cgroup text into (controllers, path) pairs; v2's line has no controllers.
struct ProcCgroup {
  std::vector<std::string> controllers;  // empty for the "0::" line
  std::string path;
};
Result<std::vector<ProcCgroup>> parse_proc_cgroup(std::string_view text);

}  // namespace vessel::cgroups
