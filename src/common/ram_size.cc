#include "common/ram_size.h"

#include <cstdlib>
#include <string>

#include "common/strings.h"

namespace vessel {

std::optional<int64_t> parse_ram_size(std::string_view s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (!digits()) return std::nullopt;
  size_t int_end = i;
  while (i < s.size() && s[i] == '.') {  // go-units takes (\d+(\.\d+)*)
    ++i;
    if (!digits()) return std::nullopt;
  }
  std::string number(s.substr(0, i));
  if (i < s.size() && s[i] == ' ') ++i;
  uint64_t mul = 1;
  if (i < s.size()) {
    switch (s[i] | 0x20) {
      case 'k': mul = 1ULL << 10; ++i; break;
      case 'm': mul = 1ULL << 20; ++i; break;
      case 'g': mul = 1ULL << 30; ++i; break;
      case 't': mul = 1ULL << 40; ++i; break;
      case 'p': mul = 1ULL << 50; ++i; break;
      default: break;
    }
  }
  if (i < s.size() && (s[i] | 0x20) == 'i') ++i;
  if (i < s.size() && (s[i] | 0x20) == 'b') ++i;
  if (i != s.size()) return std::nullopt;
  if (int_end == number.size()) {
    auto n = parse_u64(number);
    if (!n || (*n != 0 && mul > static_cast<uint64_t>(INT64_MAX) / *n)) return std::nullopt;
    return static_cast<int64_t>(*n * mul);
  }
  double v = std::strtod(number.c_str(), nullptr) * static_cast<double>(mul);
  if (!(v >= 0) || v >= 9.2e18) return std::nullopt;
  return static_cast<int64_t>(v);
}

}  // namespace vessel
