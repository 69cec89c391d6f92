// The build cache: what each layer-making step (RUN, COPY, ADD) produced,
// keyed by a chain of hashes (the parent step's key, the instruction with its
// variables expanded, the content of the files it copies), kept as small JSON
// records under <image-root>/build-cache/. A hit needs the layer blob to still
// be in the store; its unpacked directory is recreated if it was removed.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "image/digest.h"
#include "image/layer_writer.h"
#include "image/store.h"

namespace vessel::image::build {

struct CacheRecord {
  LayerBlob layer;
  std::string created;  // when the step ran
};

// The key of a step: SHA-256 over the parent's key and the step's description.
Digest step_key(const Digest& parent, std::string_view step);

class BuildCache {
 public:
  explicit BuildCache(Store& store) : store_(store) {}
  // The record of `key` if it is there and its layer can be used.
  std::optional<CacheRecord> get(const Digest& key);
  Status put(const Digest& key, const CacheRecord& r);

 private:
  std::string path(const Digest& key) const;
  Store& store_;
};

}  // namespace vessel::image::build
