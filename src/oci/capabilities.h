// Linux capability names <-> numbers, as the runtime-spec writes them ("CAP_SYS_ADMIN").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vessel::oci {

// The highest capability number this build knows (CAP_CHECKPOINT_RESTORE).
constexpr int kLastKnownCap = 40;

std::optional<int> capability_from_name(std::string_view name);
std::string capability_name(int cap);
// All known capability names, in number order.
std::vector<std::string> all_capability_names();

}  // namespace vessel::oci
