// The state of one stage of a build as its instructions run: the image so far
// (layers, config, history), the ARGs in scope, the SHELL, and the cache key
// chain (each step's key hashes its parent's key with the step).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "image/digest.h"
#include "image/manifest.h"

namespace vessel::image::build {

struct Stage {
  std::string name;                // "FROM … AS name", lower case; "" when unnamed
  int index = 0;                   // 0-based position among the stages
  std::vector<Descriptor> layers;  // the image's layer blobs, bottom first
  std::vector<Digest> diff_ids;    // their diff IDs
  nlohmann::json config = nlohmann::json::object();  // the OCI image config being built
  std::vector<std::string> shell{"/bin/sh", "-c"};
  std::map<std::string, std::string> args;  // ARGs declared in this stage, with their values
  Digest key;                               // cache key of the last step
  std::string created;                      // RFC 3339 time of the last change that made a layer

  // The runtime part of the config ("config": Env, Cmd, …), created when missing.
  nlohmann::json& run();
  // The value of $name for expansion: the stage's ENV first, then its ARGs.
  std::optional<std::string> lookup(const std::string& name);
  // Env as "K=V" strings, and setting one (replacing an earlier K).
  std::vector<std::string> env();
  void set_env(const std::string& k, const std::string& v);
  // Appends a history entry ("created_by"), as Docker and podman record each step.
  void add_history(const std::string& created_by, bool empty_layer);
  // Adds a layer the step produced.
  void add_layer(const Descriptor& blob, const Digest& diff_id);
  // The final image config JSON (rootfs.diff_ids and created filled in).
  std::string config_json() const;
};

}  // namespace vessel::image::build
