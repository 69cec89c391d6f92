// Typed, path-aware access to a JSON document: every error names the field
// ("process.user.uid: expected an unsigned integer").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace vessel::oci {

using Json = nlohmann::json;

// Parses text into JSON; the error names `what` (e.g. the file) and the position.
Result<Json> parse_json(const std::string& text, const std::string& what);

// A view of one JSON object with its dotted path, for field lookups.
class JsonObject {
 public:
  JsonObject(const Json& j, std::string path) : j_(j), path_(std::move(path)) {}
  // Fails unless the value at `path` is an object (or absent when `optional`).
  static Result<JsonObject> at(const Json& j, const std::string& path);

  const std::string& path() const { return path_; }
  std::string field(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  bool has(const std::string& key) const;
  const Json* raw(const std::string& key) const;

  Result<std::optional<std::string>> opt_string(const std::string& key) const;
  Result<std::string> string(const std::string& key, const std::string& fallback = "") const;
  Result<std::optional<uint64_t>> opt_u64(const std::string& key) const;
  Result<std::optional<int64_t>> opt_i64(const std::string& key) const;
  Result<std::optional<uint32_t>> opt_u32(const std::string& key) const;
  Result<std::optional<bool>> opt_bool(const std::string& key) const;
  Result<bool> boolean(const std::string& key, bool fallback = false) const;
  Result<std::vector<std::string>> strings(const std::string& key) const;
  Result<std::map<std::string, std::string>> string_map(const std::string& key) const;
  // The object at key, or nullopt when absent; an error when not an object.
  Result<std::optional<JsonObject>> object(const std::string& key) const;
  // The array at key (empty when absent); an error when not an array.
  Result<std::vector<const Json*>> array(const std::string& key) const;

 private:
  const Json& j_;
  std::string path_;
};

}  // namespace vessel::oci
