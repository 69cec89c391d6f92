#include "oci/json_reader.h"

#include <limits>

#include "common/strings.h"

namespace vessel::oci {

Result<Json> parse_json(const std::string& text, const std::string& what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Re-parse with exceptions only to learn where it failed.
    try {
      Json again = Json::parse(text);
      (void)again;
    } catch (const Json::parse_error& e) {
      return Error::invalid(cat(what, ": invalid JSON at byte ", e.byte));
    } catch (const Json::exception& e) {  // e.g. out_of_range: a number too large for a double
      return Error::invalid(cat(what, ": invalid JSON (", e.what(), ")"));
    }
    return Error::invalid(cat(what, ": invalid JSON"));
  }
  return j;
}

Result<JsonObject> JsonObject::at(const Json& j, const std::string& path) {
  if (!j.is_object()) return Error::invalid(cat(path.empty() ? "document" : path, ": expected an object"));
  return JsonObject(j, path);
}

bool JsonObject::has(const std::string& key) const {
  auto it = j_.find(key);
  return it != j_.end() && !it->is_null();
}

const Json* JsonObject::raw(const std::string& key) const {
  auto it = j_.find(key);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

Result<std::optional<std::string>> JsonObject::opt_string(const std::string& key) const {
  const Json* v = raw(key);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) return Error::invalid(cat(field(key), ": expected a string"));
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::string> JsonObject::string(const std::string& key, const std::string& fallback) const {
  auto v = TRY(opt_string(key));
  return v ? *v : fallback;
}

Result<std::optional<uint64_t>> JsonObject::opt_u64(const std::string& key) const {
  const Json* v = raw(key);
  if (!v) return std::optional<uint64_t>();
  if (v->is_number_unsigned()) return std::optional<uint64_t>(v->get<uint64_t>());
  if (v->is_number_integer() && v->get<int64_t>() >= 0) return std::optional<uint64_t>(v->get<int64_t>());
  return Error::invalid(cat(field(key), ": expected an unsigned integer"));
}

Result<std::optional<int64_t>> JsonObject::opt_i64(const std::string& key) const {
  const Json* v = raw(key);
  if (!v) return std::optional<int64_t>();
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
      return Error::invalid(cat(field(key), ": integer out of range"));
    return std::optional<int64_t>(v->get<int64_t>());
  }
  return Error::invalid(cat(field(key), ": expected an integer"));
}

Result<std::optional<uint32_t>> JsonObject::opt_u32(const std::string& key) const {
  auto v = TRY(opt_u64(key));
  if (v && *v > std::numeric_limits<uint32_t>::max()) return Error::invalid(cat(field(key), ": value out of range"));
  if (!v) return std::optional<uint32_t>();
  return std::optional<uint32_t>(static_cast<uint32_t>(*v));
}

Result<std::optional<bool>> JsonObject::opt_bool(const std::string& key) const {
  const Json* v = raw(key);
  if (!v) return std::optional<bool>();
  if (!v->is_boolean()) return Error::invalid(cat(field(key), ": expected true or false"));
  return std::optional<bool>(v->get<bool>());
}

Result<bool> JsonObject::boolean(const std::string& key, bool fallback) const {
  auto v = TRY(opt_bool(key));
  return v ? *v : fallback;
}

Result<std::vector<std::string>> JsonObject::strings(const std::string& key) const {
  std::vector<std::string> out;
  const Json* v = raw(key);
  if (!v) return out;
  if (!v->is_array()) return Error::invalid(cat(field(key), ": expected an array of strings"));
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) return Error::invalid(cat(field(key), "[", i, "]: expected a string"));
    out.push_back((*v)[i].get<std::string>());
  }
  return out;
}

Result<std::map<std::string, std::string>> JsonObject::string_map(const std::string& key) const {
  std::map<std::string, std::string> out;
  const Json* v = raw(key);
  if (!v) return out;
  if (!v->is_object()) return Error::invalid(cat(field(key), ": expected an object of strings"));
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it.value().is_string()) return Error::invalid(cat(field(key), ".", it.key(), ": expected a string"));
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

Result<std::optional<JsonObject>> JsonObject::object(const std::string& key) const {
  const Json* v = raw(key);
  if (!v) return std::optional<JsonObject>();
  if (!v->is_object()) return Error::invalid(cat(field(key), ": expected an object"));
  return std::optional<JsonObject>(JsonObject(*v, field(key)));
}

Result<std::vector<const Json*>> JsonObject::array(const std::string& key) const {
  std::vector<const Json*> out;
  const Json* v = raw(key);
  if (!v) return out;
  if (!v->is_array()) return Error::invalid(cat(field(key), ": expected an array"));
  for (auto& e : *v) out.push_back(&e);
  return out;
}

}  // namespace vessel::oci
