#include "oci/mount_options.h"

#include <sys/mount.h>

#include <map>

#include "common/strings.h"

namespace vessel::oci {
namespace {
struct FlagWord {
  bool clear;
  unsigned long flag;
};

const std::map<std::string, FlagWord>& flag_words() {
  static const std::map<std::string, FlagWord> m = {
      {"async", {true, MS_SYNCHRONOUS}},  {"atime", {true, MS_NOATIME}},
      {"defaults", {false, 0}},           {"dev", {true, MS_NODEV}},
      {"diratime", {true, MS_NODIRATIME}}, {"dirsync", {false, MS_DIRSYNC}},
      {"exec", {true, MS_NOEXEC}},        {"iversion", {false, MS_I_VERSION}},
      {"lazytime", {false, MS_LAZYTIME}}, {"loud", {true, MS_SILENT}},
      {"mand", {false, MS_MANDLOCK}},     {"noatime", {false, MS_NOATIME}},
      {"nodev", {false, MS_NODEV}},       {"nodiratime", {false, MS_NODIRATIME}},
      {"noexec", {false, MS_NOEXEC}},     {"noiversion", {true, MS_I_VERSION}},
      {"nolazytime", {true, MS_LAZYTIME}}, {"nomand", {true, MS_MANDLOCK}},
      {"norelatime", {true, MS_RELATIME}}, {"nostrictatime", {true, MS_STRICTATIME}},
      {"nosuid", {false, MS_NOSUID}},     {"relatime", {false, MS_RELATIME}},
      {"remount", {false, MS_REMOUNT}},   {"ro", {false, MS_RDONLY}},
      {"rw", {true, MS_RDONLY}},          {"silent", {false, MS_SILENT}},
      {"strictatime", {false, MS_STRICTATIME}}, {"suid", {true, MS_NOSUID}},
      {"sync", {false, MS_SYNCHRONOUS}},
  };
  return m;
}
// runc 1.1's recursive options: applied with mount_setattr(AT_RECURSIVE) after the mount.
const std::map<std::string, FlagWord>& rec_attr_words() {
  static const std::map<std::string, FlagWord> m = {
      {"rro", {false, MOUNT_ATTR_RDONLY}},           {"rrw", {true, MOUNT_ATTR_RDONLY}},
      {"rnosuid", {false, MOUNT_ATTR_NOSUID}},       {"rsuid", {true, MOUNT_ATTR_NOSUID}},
      {"rnodev", {false, MOUNT_ATTR_NODEV}},         {"rdev", {true, MOUNT_ATTR_NODEV}},
      {"rnoexec", {false, MOUNT_ATTR_NOEXEC}},       {"rexec", {true, MOUNT_ATTR_NOEXEC}},
      {"rnodiratime", {false, MOUNT_ATTR_NODIRATIME}}, {"rdiratime", {true, MOUNT_ATTR_NODIRATIME}},
      {"rrelatime", {false, MOUNT_ATTR_RELATIME}},   {"rnorelatime", {true, MOUNT_ATTR_RELATIME}},
      {"rnoatime", {false, MOUNT_ATTR_NOATIME}},     {"ratime", {true, MOUNT_ATTR_NOATIME}},
      {"rstrictatime", {false, MOUNT_ATTR_STRICTATIME}}, {"rnostrictatime", {true, MOUNT_ATTR_STRICTATIME}},
      {"rnosymfollow", {false, MOUNT_ATTR_NOSYMFOLLOW}}, {"rsymfollow", {true, MOUNT_ATTR_NOSYMFOLLOW}},
  };
  return m;
}

}  // namespace

unsigned long propagation_from_name(const std::string& name) {
  static const std::map<std::string, unsigned long> m = {
      {"private", MS_PRIVATE},       {"rprivate", MS_PRIVATE | MS_REC},
      {"shared", MS_SHARED},         {"rshared", MS_SHARED | MS_REC},
      {"slave", MS_SLAVE},           {"rslave", MS_SLAVE | MS_REC},
      {"unbindable", MS_UNBINDABLE}, {"runbindable", MS_UNBINDABLE | MS_REC},
  };
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

Result<MountOptions> parse_mount_options(const std::vector<std::string>& options, const std::string& field) {
  MountOptions o;
  for (size_t i = 0; i < options.size(); ++i) {
    const std::string& w = options[i];
    if (w == "bind") {
      o.bind = true;
    } else if (w == "rbind") {
      o.bind = true;
      o.recursive = true;
    } else if (unsigned long p = propagation_from_name(w)) {
      o.propagation = p;
    } else if (auto it = flag_words().find(w); it != flag_words().end()) {
      if (it->second.clear) {
        o.flags &= ~it->second.flag;
        o.clear |= it->second.flag;
      } else {
        o.flags |= it->second.flag;
        o.clear &= ~it->second.flag;
      }
    } else if (auto rit = rec_attr_words().find(w); rit != rec_attr_words().end()) {
      if (rit->second.clear) {
        o.rec_attr_clr |= rit->second.flag;
      } else {
        o.rec_attr_set |= rit->second.flag;
        // An access-time setting replaces the others: the kernel wants MOUNT_ATTR__ATIME cleared with it.
        if ((rit->second.flag & MOUNT_ATTR__ATIME) == rit->second.flag) o.rec_attr_clr |= MOUNT_ATTR__ATIME;
      }
    } else if (w == "idmap" || w == "ridmap" || (starts_with(w, "r") && flag_words().count(w.substr(1)))) {
      return Error::invalid(cat(field, "[", i, "]: mount option \"", w, "\" is not supported"));
    } else if (w == "tmpcopyup" || w == "copy-symlink" || w == "notmpcopyup") {
      // crun extensions that need no action from us.
    } else {
      if (!o.data.empty()) o.data += ",";
      o.data += w;
    }
  }
  return o;
}

}  // namespace vessel::oci
