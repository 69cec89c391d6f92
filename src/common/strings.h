// Small string helpers (g++ 12 has no <format>).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace vessel {

namespace detail {
inline void append(std::string& s, std::string_view v) { s.append(v); }
inline void append(std::string& s, const char* v) { s.append(v); }
inline void append(std::string& s, const std::string& v) { s.append(v); }
inline void append(std::string& s, char c) { s.push_back(c); }
template <class T, std::enable_if_t<std::is_arithmetic_v<T>, int> = 0>
void append(std::string& s, T v) { s.append(std::to_string(v)); }
}  // namespace detail

// Concatenates strings and numbers: cat("mount ", path, ": ", 3).
template <class... Args>
std::string cat(const Args&... args) {
  std::string s;
  (detail::append(s, args), ...);
  return s;
}

std::vector<std::string> split(std::string_view s, char sep);
bool starts_with(std::string_view s, std::string_view prefix);
std::string_view trim(std::string_view s);

// Parses a whole decimal unsigned / signed integer; nullopt on any junk.
std::optional<uint64_t> parse_u64(std::string_view s);
std::optional<int64_t> parse_i64(std::string_view s);

// Parses "512M", "2G", "1048576", "64KiB" into bytes; nullopt when malformed.
std::optional<uint64_t> parse_size(std::string_view s);

// Quotes a string for JSON output.
std::string json_quote(std::string_view s);

}  // namespace vessel
