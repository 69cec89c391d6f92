// linux.resources.unified: cgroup v2 files written as given.
#include "cgroups/controllers.h"
#include "common/strings.h"

namespace vessel::cgroups {

Status apply_unified(const CgroupDir& dir, const std::map<std::string, std::string>& unified) {
  for (const auto& [key, value] : unified) {
    std::string where = cat("linux.resources.unified.", key);
    if (key.empty() || key.find('/') != std::string::npos || key == "." || key == ".." ||
        key.find('.') == std::string::npos)
      return Error::invalid(cat(where, ": not a cgroup control file name"));
    if (key == "cgroup.procs" || key == "cgroup.threads" || key == "cgroup.subtree_control")
      return Error::invalid(cat(where, ": may not be set through unified"));
    if (!dir.has(key)) {
      std::string controller = key.substr(0, key.find('.'));
      return Error(ENOENT, cat(where, ": no such file in ", dir.path(), " (is the ", controller,
                               " controller available?)"));
    }
    auto st = dir.write(key, value);
    if (!st) return std::move(st).context(where);
  }
  return ok();
}

}  // namespace vessel::cgroups
