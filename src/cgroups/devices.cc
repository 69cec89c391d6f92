// Device access rules: v1 devices.allow / devices.deny; v2 needs eBPF (not yet).
#include "cgroups/controllers.h"
#include "common/log.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

using oci::LinuxDeviceCgroup;

LinuxDeviceCgroup allow(const char* type, int64_t major, int64_t minor, const char* access) {
  LinuxDeviceCgroup r;
  r.allow = true;
  r.type = type;
  if (major >= 0) r.major = major;
  if (minor >= 0) r.minor = minor;
  r.access = access;
  return r;
}

std::string type_of(const LinuxDeviceCgroup& r) { return r.type.value_or("a"); }
int64_t major_of(const LinuxDeviceCgroup& r) { return r.major.value_or(-1); }
int64_t minor_of(const LinuxDeviceCgroup& r) { return r.minor.value_or(-1); }
std::string access_of(const LinuxDeviceCgroup& r) {
  return r.access && !r.access->empty() ? *r.access : std::string("rwm");
}

// A rule for every device and every access.
bool is_all(const LinuxDeviceCgroup& r) {
  std::string a = access_of(r);
  return type_of(r) == "a" && a.find('r') != std::string::npos && a.find('w') != std::string::npos &&
         a.find('m') != std::string::npos;
}

// Whether allow rule `r` grants nothing beyond rule `d`.
bool within(const LinuxDeviceCgroup& r, const LinuxDeviceCgroup& d) {
  if (type_of(d) != "a" && type_of(r) != type_of(d)) return false;
  if (major_of(d) != -1 && major_of(r) != major_of(d)) return false;
  if (minor_of(d) != -1 && minor_of(r) != minor_of(d)) return false;
  std::string da = access_of(d);
  for (char c : access_of(r))
    if (da.find(c) == std::string::npos) return false;
  return true;
}

}  // namespace

std::string device_rule_line(const LinuxDeviceCgroup& r) {
  std::string type = type_of(r);
  if (type == "a") return cat("a *:* ", access_of(r));  // the kernel ignores numbers for "a"
  auto num = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
  return cat(type, " ", num(major_of(r)), ":", num(minor_of(r)), " ", access_of(r));
}

std::vector<LinuxDeviceCgroup> default_device_rules() {
  return {
      allow("c", -1, -1, "m"),   allow("b", -1, -1, "m"),    // mknod of anything
      allow("c", 1, 3, "rwm"),   allow("c", 1, 5, "rwm"),    // null, zero
      allow("c", 1, 7, "rwm"),   allow("c", 1, 8, "rwm"),    // full, random
      allow("c", 1, 9, "rwm"),   allow("c", 5, 0, "rwm"),    // urandom, tty
      allow("c", 5, 1, "rwm"),   allow("c", 5, 2, "rwm"),    // console, ptmx
      allow("c", 136, -1, "rwm"), allow("c", 10, 200, "rwm"),  // pts/*, net/tun
  };
}

Status apply_devices_v1(const CgroupDir& dir, const std::vector<LinuxDeviceCgroup>& rules) {
  if (rules.empty()) return ok();
  // Start from "nothing allowed" unless the rules themselves start from "everything allowed".
  if (!(is_all(rules.front()))) TRY(dir.write("devices.deny", "a"));
  for (const auto& r : rules) {
    if (is_all(r)) {
      TRY(dir.write(r.allow ? "devices.allow" : "devices.deny", "a"));
    } else {
      TRY(dir.write(r.allow ? "devices.allow" : "devices.deny", device_rule_line(r)));
    }
  }
  return ok();
}

Status check_devices_v2(const std::vector<LinuxDeviceCgroup>& rules) {
  if (rules.empty()) return ok();
  // Everything allowed from some point on: no program needed.
  if (is_all(rules.back()) && rules.back().allow) return ok();
  const auto defaults = default_device_rules();
  for (size_t i = 0; i < rules.size(); ++i) {
    const auto& r = rules[i];
    if (!r.allow) {
      if (is_all(r)) continue;  // deny-all is where the defaults start from
      return Error(ENOTSUP, cat("linux.resources.devices[", i, "]: device rule \"deny ", device_rule_line(r),
                                "\" needs eBPF device control, not supported on cgroup v2 yet"));
    }
    bool is_default = false;
    for (const auto& d : defaults) is_default = is_default || within(r, d);
    if (!is_default)
      return Error(ENOTSUP, cat("linux.resources.devices[", i, "]: device rule \"allow ", device_rule_line(r),
                                "\" needs eBPF device control, not supported on cgroup v2 yet"));
  }
  log::debug("cgroups", "cgroup v2: default device rules are not enforced yet (no eBPF program)");
  return ok();
}

}  // namespace vessel::cgroups
