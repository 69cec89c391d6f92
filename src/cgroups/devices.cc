// Device access rules: v1 devices.allow / devices.deny; v2 an eBPF program (device_filter.h).
#include "cgroups/controllers.h"
#include "cgroups/device_filter.h"
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

Status apply_devices_v2(const CgroupDir& dir, const std::vector<LinuxDeviceCgroup>& rules,
                        DeviceProgramInstaller& installer) {
  if (rules.empty()) return ok();
  auto program = TRY(device_filter_program(rules));
  if (dir.check_only()) return ok();
  return installer.install(dir.path(), program);
}

}  // namespace vessel::cgroups
