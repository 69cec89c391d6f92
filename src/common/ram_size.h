// Memory sizes the way runc's flags read them (docker/go-units RAMInBytes).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vessel {

// A number, possibly with a fraction, an optional space, then an optional k/m/g/t/p (any
// case, 1024-based) with an optional "i" and "b": "50M", "50MiB", "50mb", "1.5g", "4096",
// "512 k". nullopt when malformed or over INT64_MAX. For `update --memory` and friends.
std::optional<int64_t> parse_ram_size(std::string_view s);

}  // namespace vessel
