// JsonReader: reads the fields of one JSON object from outside by type.
// Each error names the field with its path ("drives[0].path_on_host:
// expected a string"); finish() rejects fields nobody read, as
// Firecracker's serde(deny_unknown_fields) does. Never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/strings.h"

namespace vessel::vmm {

class JsonReader {
 public:
  // `where`: the path of this object ("" at the top, "drives[0]" ...).
  JsonReader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}

  // The object itself must be a JSON object.
  Status check_object() const {
    if (!j_.is_object()) return Error::invalid(cat(where_.empty() ? "body" : where_, ": expected a JSON object"));
    return ok();
  }
  // "where.key" or "key".
  std::string name(const std::string& key) const { return where_.empty() ? key : where_ + "." + key; }

  // The field when present (null counts as absent); nullptr otherwise.
  const nlohmann::json* find(const std::string& key) {
    seen_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  Result<std::optional<std::string>> str(const std::string& key) {
    const auto* v = find(key);
    if (!v) return std::optional<std::string>();
    if (!v->is_string()) return Error::invalid(cat(name(key), ": expected a string"));
    return std::optional<std::string>(v->get<std::string>());
  }
  Result<std::optional<uint64_t>> u64(const std::string& key) {
    const auto* v = find(key);
    if (!v) return std::optional<uint64_t>();
    if (v->is_number_unsigned()) return std::optional<uint64_t>(v->get<uint64_t>());
    if (v->is_number_integer()) return Error::invalid(cat(name(key), ": must not be negative"));
    return Error::invalid(cat(name(key), ": expected an unsigned integer"));
  }
  Result<std::optional<bool>> boolean(const std::string& key) {
    const auto* v = find(key);
    if (!v) return std::optional<bool>();
    if (!v->is_boolean()) return Error::invalid(cat(name(key), ": expected true or false"));
    return std::optional<bool>(v->get<bool>());
  }
  // Required variants: a missing field is an error naming it.
  Result<std::string> req_str(const std::string& key) {
    auto v = TRY(str(key));
    if (!v) return Error::invalid(cat(name(key), ": missing"));
    return *v;
  }
  Result<uint64_t> req_u64(const std::string& key) {
    auto v = TRY(u64(key));
    if (!v) return Error::invalid(cat(name(key), ": missing"));
    return *v;
  }

  // An error for the first field that no accessor asked about.
  Status finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) return Error::invalid(cat(name(it.key()), ": unknown field"));
    return ok();
  }

 private:
  const nlohmann::json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

}  // namespace vessel::vmm
