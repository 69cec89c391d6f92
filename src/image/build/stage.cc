#include "image/build/stage.h"

#include "common/strings.h"
#include "image/json_fields.h"

namespace vessel::image::build {

using Json = nlohmann::json;

Json& Stage::run() {
  if (!config.contains("config") || !config["config"].is_object()) config["config"] = Json::object();
  return config["config"];
}

std::vector<std::string> Stage::env() {
  std::vector<std::string> out;
  auto& r = run();
  if (r.contains("Env") && r["Env"].is_array())
    for (auto& e : r["Env"])
      if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

std::optional<std::string> Stage::lookup(const std::string& name) {
  for (auto& e : env())
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=')
      return e.substr(name.size() + 1);
  if (auto it = args.find(name); it != args.end()) return it->second;
  return std::nullopt;
}

void Stage::set_env(const std::string& k, const std::string& v) {
  auto list = env();
  bool replaced = false;
  for (auto& e : list)
    if (starts_with(e, k + "=")) {
      e = k + "=" + v;
      replaced = true;
    }
  if (!replaced) list.push_back(k + "=" + v);
  run()["Env"] = list;
}

void Stage::add_history(const std::string& created_by, bool empty_layer) {
  if (!config.contains("history") || !config["history"].is_array()) config["history"] = Json::array();
  Json h = {{"created", created}, {"created_by", created_by}, {"comment", "vessel image build"}};
  if (empty_layer) h["empty_layer"] = true;
  config["history"].push_back(h);
}

void Stage::add_layer(const Descriptor& blob, const Digest& diff_id) {
  layers.push_back(blob);
  diff_ids.push_back(diff_id);
}

std::string Stage::config_json() const {
  Json c = config;
  c["created"] = created;
  c["architecture"] = string_field(c, "architecture", "amd64");
  c["os"] = string_field(c, "os", "linux");
  Json ids = Json::array();
  for (auto& d : diff_ids) ids.push_back(d.str());
  c["rootfs"] = {{"type", "layers"}, {"diff_ids", ids}};
  return c.dump();
}

}  // namespace vessel::image::build
