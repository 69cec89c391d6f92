// Translates a runtime-spec mount's "options" into mount(2) flags, propagation and data.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"

namespace vessel::oci {

struct MountOptions {
  unsigned long flags = 0;        // MS_* to set
  unsigned long clear = 0;        // MS_* explicitly cleared ("rw", "suid", …) — matters for bind remounts
  unsigned long propagation = 0;  // MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, possibly | MS_REC
  bool bind = false;
  bool recursive = false;  // rbind
  std::string data;        // filesystem-specific options joined with ","
  // Recursive attributes ("rro", "rnosuid", "ratime"…, as runc 1.1 names them): MOUNT_ATTR_*
  // bits mount_setattr(AT_RECURSIVE) sets and clears on the mount and every mount below it.
  uint64_t rec_attr_set = 0;
  uint64_t rec_attr_clr = 0;
};

// Parses `options`; unknown words become filesystem data, as runc does.
// `field` names the config field in errors.
Result<MountOptions> parse_mount_options(const std::vector<std::string>& options, const std::string& field);

// Parses a single propagation word ("rslave", "private", …); 0 when unknown.
unsigned long propagation_from_name(const std::string& name);

}  // namespace vessel::oci
