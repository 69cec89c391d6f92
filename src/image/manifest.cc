#include "image/manifest.h"

#include <nlohmann/json.hpp>

namespace vessel::image {

namespace {

using Json = nlohmann::json;

Result<Descriptor> parse_descriptor(const Json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("digest") || !j["digest"].is_string())
    return Error::invalid(where + ": descriptor without a digest");
  Descriptor d;
  d.digest = TRYC(Digest::parse(j["digest"].get<std::string>()), where);
  if (j.contains("mediaType") && j["mediaType"].is_string()) d.media_type = j["mediaType"].get<std::string>();
  if (j.contains("size")) {
    if (!j["size"].is_number_integer() || j["size"].get<int64_t>() < 0)
      return Error::invalid(where + ": descriptor size must be a non-negative integer");
    d.size = j["size"].get<int64_t>();
    d.size_given = true;
  }
  return d;
}

std::vector<std::string> strings(const Json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array())
    for (auto& s : j[key])
      if (s.is_string()) out.push_back(s.get<std::string>());
  return out;
}

std::string string_at(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

Json descriptor_json(const Descriptor& d) {
  return {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
}

}  // namespace

Result<Manifest> parse_manifest(const std::string& text) {
  auto j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::invalid("image manifest: not a JSON object");
  if (!j.contains("config")) return Error::invalid("image manifest: no config");
  Manifest m;
  m.config = TRY(parse_descriptor(j["config"], "image manifest config"));
  if (j.contains("layers") && j["layers"].is_array())
    for (auto& l : j["layers"]) m.layers.push_back(TRY(parse_descriptor(l, "image manifest layer")));
  return m;
}

Result<ImageConfig> parse_config(const std::string& text) {
  auto j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error::invalid("image config: not a JSON object");
  ImageConfig c;
  c.architecture = string_at(j, "architecture");
  c.os = string_at(j, "os");
  c.created = string_at(j, "created");
  if (j.contains("rootfs") && j["rootfs"].is_object())
    for (auto& s : strings(j["rootfs"], "diff_ids")) c.diff_ids.push_back(TRYC(Digest::parse(s), "image config diff_ids"));
  if (j.contains("config") && j["config"].is_object()) {
    auto& r = j["config"];
    c.run.entrypoint = strings(r, "Entrypoint");
    c.run.cmd = strings(r, "Cmd");
    c.run.env = strings(r, "Env");
    c.run.working_dir = string_at(r, "WorkingDir");
    c.run.user = string_at(r, "User");
  }
  return c;
}

std::string manifest_json(const Manifest& m) {
  Json layers = Json::array();
  for (auto& l : m.layers) layers.push_back(descriptor_json(l));
  Json j = {{"schemaVersion", 2}, {"mediaType", kManifestMediaType}, {"config", descriptor_json(m.config)},
            {"layers", layers}};
  return j.dump();
}

std::string minimal_config_json(const Digest& diff_id, const std::string& created) {
  Json j = {{"created", created},
            {"architecture", "amd64"},
            {"os", "linux"},
            {"config",
             {{"Env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}}, {"Cmd", {"/bin/sh"}}}},
            {"rootfs", {{"type", "layers"}, {"diff_ids", {diff_id.str()}}}}};
  return j.dump();
}

}  // namespace vessel::image
