#include "container/lsm.h"

#include <fcntl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel::container {
namespace {

constexpr long kSelinuxMagic = 0xf97cff8c;  // SELINUX_MAGIC

// Writes `value` to /proc/thread-self/attr/<name> (the calling thread's next-exec label).
Status write_attr(const std::string& name, const std::string& value, const char* field) {
  int fd = ::open(cat("/proc/thread-self/attr/", name).c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Error::from_errno(cat(field, ": open /proc/thread-self/attr/", name));
  UniqueFd guard(fd);
  ssize_t n = ::write(fd, value.data(), value.size());
  if (n < 0) return Error::from_errno(cat(field, ": set \"", value, "\""));
  return ok();
}

}  // namespace

bool selinux_enabled() {
  struct statfs st{};
  if (::statfs("/sys/fs/selinux", &st) < 0 || st.f_type != kSelinuxMagic) return false;
  auto enforce = read_file("/sys/fs/selinux/enforce");
  return static_cast<bool>(enforce);
}

bool apparmor_enabled() {
  auto text = read_file("/sys/module/apparmor/parameters/enabled");
  return text && starts_with(*text, "Y");
}

Status check_security_labels(const oci::Spec& spec) {
  bool selinux = selinux_enabled();
  if (spec.process && !spec.process->selinux_label.empty() && !selinux)
    return Error::invalid("process.selinuxLabel: SELinux is not enabled on this host");
  if (!spec.linux_.mount_label.empty() && !selinux)
    return Error::invalid("linux.mountLabel: SELinux is not enabled on this host");
  if (spec.process && !spec.process->apparmor_profile.empty() && !apparmor_enabled())
    return Error::invalid("process.apparmorProfile: AppArmor is not enabled on this host");
  return ok();
}

Status set_security_labels(const oci::Process& p) {
  if (!p.selinux_label.empty()) TRY(write_attr("exec", p.selinux_label, "process.selinuxLabel"));
  if (!p.apparmor_profile.empty()) {
    // The AppArmor-specific file when the kernel has it (stacked LSMs), else the shared one.
    std::string text = "exec " + p.apparmor_profile;
    if (::access("/proc/thread-self/attr/apparmor/exec", F_OK) == 0)
      TRY(write_attr("apparmor/exec", text, "process.apparmorProfile"));
    else
      TRY(write_attr("exec", text, "process.apparmorProfile"));
  }
  return ok();
}

std::string with_mount_label(const std::string& data, const std::string& label) {
  if (label.empty()) return data;
  std::string opt = cat("context=\"", label, "\"");
  return data.empty() ? opt : data + "," + opt;
}

}  // namespace vessel::container
