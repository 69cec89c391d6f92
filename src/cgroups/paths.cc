#include "cgroups/paths.h"

#include <cstdint>

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

namespace {

// FNV-1a, 64 bits: stable across builds and hosts (the name must not change between create and delete).
uint64_t fnv1a(std::string_view data) {
  uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string hex(uint64_t v, int digits) {
  static const char* kHex = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = kHex[v & 15];
  return out;
}

}  // namespace

std::string default_cgroup_name(const std::string& container_id, const std::string& state_root) {
  if (state_root.empty()) return container_id;
  constexpr size_t kNameMax = 255;
  uint64_t h = fnv1a(state_root);
  std::string name = cat(container_id, "-", hex(h ^ (h >> 32), 8));
  if (name.size() <= kNameMax) return name;
  // Cut the ID; the hash then covers the whole ID too, so two long IDs stay apart.
  std::string key = state_root;
  key += '\0';
  key += container_id;
  return cat(container_id.substr(0, 200), "-", hex(fnv1a(key), 16));
}

Result<std::string> resolve_path(const std::string& cgroups_path, const std::string& default_name,
                                 const std::string& own_path) {
  if (cgroups_path.empty()) {
    if (default_name.empty() || default_name.find('/') != std::string::npos || default_name == "." ||
        default_name == "..")
      return Error::invalid(cat("cannot make a cgroup path from container id \"", default_name, "\""));
    return cat("/vessel/", default_name);
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
