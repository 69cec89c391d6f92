// Control-file readers shared by the v1 and v2 stats code (internal to cgroups/).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace vessel::cgroups::stats_files {

// The text of dir/name, trailing whitespace removed. A missing file is "" when
// `optional` (kernels differ in which files they have), else an error.
Result<std::string> read_text(const std::string& dir, std::string_view name, bool optional = false);

// A control file holding one unsigned integer; "max" reads as UINT64_MAX (runc's
// convention). Missing and `optional`: 0.
Result<uint64_t> read_u64(const std::string& dir, std::string_view name, bool optional = false);

// Splits on spaces, tabs and newlines, dropping empty fields.
std::vector<std::string> fields(std::string_view text);

}  // namespace vessel::cgroups::stats_files
