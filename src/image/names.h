// The name index: which image (manifest digest) each NAME:TAG points to.
// Pure data + JSON; the store reads and writes it under its lock.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "image/digest.h"

namespace vessel::image {

// One image in the store: its manifest and the names that point to it (maybe none).
struct ImageRecord {
  Digest manifest;
  std::vector<std::string> names;
  std::string created;  // RFC 3339 time of import
};

// Adds ":latest" when `name` has no tag; rejects empty names and odd characters.
Result<std::string> normalize_name(std::string_view name);

class NameIndex {
 public:
  static Result<NameIndex> parse(const std::string& json);
  std::string to_json() const;

  // Ensures a record for `manifest` exists (created now when new).
  ImageRecord& add(const Digest& manifest, const std::string& created);
  // Points `name` (normalized) at `manifest`, taking it off any other image.
  // Returns the image that lost the name and now has none, if any.
  Result<std::optional<Digest>> tag(const std::string& name, const Digest& manifest, const std::string& created);
  // Finds an image by NAME[:TAG], "sha256:<hex>" or a unique hex prefix (at least 4 digits).
  Result<const ImageRecord*> find(const std::string& ref) const;
  // Drops the record of `manifest`.
  void erase(const Digest& manifest);
  // Removes `name` from its image; returns true when the image has no name left.
  bool untag(const Digest& manifest, const std::string& name);

  const std::vector<ImageRecord>& images() const { return images_; }

 private:
  std::vector<ImageRecord> images_;
};

}  // namespace vessel::image
