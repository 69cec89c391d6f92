#include "image/names.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace vessel::image {

Result<std::string> normalize_name(std::string_view name) {
  if (name.empty()) return Error::invalid("empty image name");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/' || c == ':';
    if (!ok) return Error::invalid("invalid image name \"" + std::string(name) + "\"");
  }
  if (name.front() == '/' || name.front() == ':' || name.back() == ':' || name.back() == '/')
    return Error::invalid("invalid image name \"" + std::string(name) + "\"");
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash))
    return std::string(name) + ":latest";
  return std::string(name);
}

Result<NameIndex> NameIndex::parse(const std::string& text) {
  NameIndex idx;
  if (text.empty()) return idx;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("images") || !j["images"].is_array())
    return Error::invalid("image index: not a JSON object with an \"images\" array");
  for (auto& e : j["images"]) {
    if (!e.is_object() || !e.contains("manifest") || !e["manifest"].is_string())
      return Error::invalid("image index: an entry without a manifest digest");
    ImageRecord r;
    r.manifest = TRYC(Digest::parse(e["manifest"].get<std::string>()), "image index");
    if (e.contains("names") && e["names"].is_array())
      for (auto& n : e["names"])
        if (n.is_string()) r.names.push_back(n.get<std::string>());
    if (e.contains("created") && e["created"].is_string()) r.created = e["created"].get<std::string>();
    idx.images_.push_back(std::move(r));
  }
  return idx;
}

std::string NameIndex::to_json() const {
  nlohmann::json arr = nlohmann::json::array();
  for (auto& r : images_) arr.push_back({{"manifest", r.manifest.str()}, {"names", r.names}, {"created", r.created}});
  return nlohmann::json{{"images", arr}}.dump(2) + "\n";
}

ImageRecord& NameIndex::add(const Digest& manifest, const std::string& created) {
  for (auto& r : images_)
    if (r.manifest == manifest) return r;
  images_.push_back(ImageRecord{manifest, {}, created});
  return images_.back();
}

Result<std::optional<Digest>> NameIndex::tag(const std::string& name, const Digest& manifest,
                                             const std::string& created) {
  auto n = TRY(normalize_name(name));
  std::optional<Digest> orphan;
  for (auto& r : images_) {
    if (r.manifest == manifest) continue;
    auto it = std::find(r.names.begin(), r.names.end(), n);
    if (it == r.names.end()) continue;
    r.names.erase(it);
    if (r.names.empty()) orphan = r.manifest;
  }
  auto& r = add(manifest, created);
  if (std::find(r.names.begin(), r.names.end(), n) == r.names.end()) r.names.push_back(n);
  return orphan;
}

Result<const ImageRecord*> NameIndex::find(const std::string& ref) const {
  if (auto n = normalize_name(ref)) {
    for (auto& r : images_)
      if (std::find(r.names.begin(), r.names.end(), *n) != r.names.end()) return &r;
  }
  std::string_view hex = ref;
  if (hex.substr(0, 7) == "sha256:") hex.remove_prefix(7);
  bool is_hex = hex.size() >= 4 && hex.size() <= 64 &&
                std::all_of(hex.begin(), hex.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (is_hex) {
    const ImageRecord* found = nullptr;
    for (auto& r : images_) {
      if (r.manifest.hex.compare(0, hex.size(), hex) != 0) continue;
      if (found) return Error::invalid("image \"" + ref + "\" is ambiguous");
      found = &r;
    }
    if (found) return found;
  }
  return Error(ENOENT, "image \"" + ref + "\" not found");
}

void NameIndex::erase(const Digest& manifest) {
  images_.erase(std::remove_if(images_.begin(), images_.end(), [&](auto& r) { return r.manifest == manifest; }),
                images_.end());
}

bool NameIndex::untag(const Digest& manifest, const std::string& name) {
  for (auto& r : images_) {
    if (!(r.manifest == manifest)) continue;
    r.names.erase(std::remove(r.names.begin(), r.names.end(), name), r.names.end());
    return r.names.empty();
  }
  return false;
}

}  // namespace vessel::image
