#include "cgroups/paths.h"

#include "common/strings.h"

namespace vessel::cgroups {

Result<std::string> clean_path(const std::string& path) {
  std::string out;
  for (const auto& part : split(path, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") return Error::invalid(cat("cgroup path \"", path, "\" must not contain \"..\""));
    out += '/';
    out += part;
  }
  return out.empty() ? std::string("/") : out;
}

Result<std::string> resolve_path(const std::string& cgroups_path, const std::string& container_id,
                                 const std::string& own_path) {
  if (cgroups_path.empty()) {
    if (container_id.empty() || container_id.find('/') != std::string::npos || container_id == "." ||
        container_id == "..")
      return Error::invalid(cat("cannot make a cgroup path from container id \"", container_id, "\""));
    return cat("/vessel/", container_id);
  }
  if (cgroups_path[0] == '/') return clean_path(cgroups_path);
  return clean_path(cat(own_path, "/", cgroups_path));
}

std::string own_path_in_mount(const std::string& proc_path, const std::string& mount_root) {
  if (mount_root.empty() || mount_root == "/") return proc_path;
  if (proc_path == mount_root) return "/";
  if (starts_with(proc_path, mount_root) && proc_path[mount_root.size()] == '/')
    return proc_path.substr(mount_root.size());
  // In a cgroup namespace /proc/self/cgroup is already relative to the namespace root.
  return proc_path;
}

std::string own_path_for(const Hierarchy& h, const std::vector<ProcCgroup>& self) {
  for (const auto& p : self) {
    bool match = h.version == 2 ? p.controllers.empty() : p.controllers == h.controllers;
    if (match) return own_path_in_mount(p.path, h.root);
  }
  return "/";
}

}  // namespace vessel::cgroups
