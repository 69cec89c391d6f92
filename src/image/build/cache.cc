#include "image/build/cache.h"

#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "image/import.h"
#include "image/json_fields.h"

namespace vessel::image::build {

using Json = nlohmann::json;

Digest step_key(const Digest& parent, std::string_view step) {
  Sha256 h;
  h.update(parent.hex);
  h.update("\n");
  h.update(step);
  return h.digest();
}

std::string BuildCache::path(const Digest& key) const { return store_.root() + "/build-cache/" + key.hex; }

std::optional<CacheRecord> BuildCache::get(const Digest& key) {
  auto text = read_file(path(key));
  if (!text) return std::nullopt;
  auto j = Json::parse(*text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  auto blob = Digest::parse(string_field(j, "blob"));
  auto diff = Digest::parse(string_field(j, "diffId"));
  if (!blob || !diff || !store_.has_blob(*blob)) return std::nullopt;
  if (!ensure_layer(store_, *blob, *diff)) return std::nullopt;
  CacheRecord r;
  r.layer.descriptor = Descriptor{string_field(j, "mediaType"), *blob, int_field(j, "size")};
  r.layer.diff_id = *diff;
  r.created = string_field(j, "created");
  return r;
}

Status BuildCache::put(const Digest& key, const CacheRecord& r) {
  TRY(mkdir_p(store_.root() + "/build-cache", 0700));
  Json j = {{"blob", r.layer.descriptor.digest.str()},
            {"mediaType", r.layer.descriptor.media_type},
            {"size", r.layer.descriptor.size},
            {"diffId", r.layer.diff_id.str()},
            {"created", r.created}};
  return write_file_atomic(path(key), j.dump() + "\n", 0600);
}

}  // namespace vessel::image::build
