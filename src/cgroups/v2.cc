// cgroup v2 specifics of creating a container's cgroup.
#include <algorithm>

#include "cgroups/fs_manager.h"
#include "common/log.h"
#include "common/strings.h"

namespace vessel::cgroups {

Status create_v2(HierarchyDir& h, WriteLog* log) {
  TRYC(make_dirs(h), cat("create cgroup ", h.path, " in ", h.mountpoint));
  // Controllers reach a cgroup only when every ancestor lists them in cgroup.subtree_control.
  std::string cur = h.mountpoint;
  for (const auto& part : split(h.path, '/')) {
    if (part.empty()) continue;
    CgroupDir d(cur, log);
    auto available = d.read("cgroup.controllers");
    if (!available) return std::move(available).error().context(cat("enable controllers in ", cur));
    auto enabled_text = d.read("cgroup.subtree_control");
    auto enabled = enabled_text ? split(*enabled_text, ' ') : std::vector<std::string>{};
    for (const auto& c : split(*available, ' ')) {
      if (c.empty() || std::find(enabled.begin(), enabled.end(), c) != enabled.end()) continue;
      // EBUSY: the cgroup has processes of its own (no internal processes rule);
      // the controller stays unavailable and apply() reports it if a limit needs it.
      auto st = d.write("cgroup.subtree_control", cat("+", c));
      if (!st) log::warn("cgroups", st.error().message());
    }
    cur = cat(cur, "/", part);
  }
  return ok();
}

}  // namespace vessel::cgroups
