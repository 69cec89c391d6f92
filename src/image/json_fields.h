// Reading fields of JSON documents that come from outside (image configs,
// indexes, manifests, cache records): a field of the wrong type reads as the
// fallback instead of throwing as nlohmann's value() does.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace vessel::image {

inline std::string string_field(const nlohmann::json& j, const char* key, const std::string& fallback = "") {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

inline bool bool_field(const nlohmann::json& j, const char* key, bool fallback = false) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

inline int64_t int_field(const nlohmann::json& j, const char* key, int64_t fallback = 0) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

// The object at j[key], made an empty object first when it is missing or not an object (j must be one).
inline nlohmann::json& object_field(nlohmann::json& j, const char* key) {
  auto& v = j[key];
  if (!v.is_object()) v = nlohmann::json::object();
  return v;
}

}  // namespace vessel::image
