// The OCI documents the store keeps: image manifests and image configs (the parts vessel uses).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "image/digest.h"

namespace vessel::image {

inline constexpr const char* kManifestMediaType = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* kIndexMediaType = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* kConfigMediaType = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* kDockerManifestMediaType = "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kDockerListMediaType = "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* kRefNameAnnotation = "org.opencontainers.image.ref.name";

struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  // The size to verify the blob against: the descriptor's "size" when it had one, else -1.
  int64_t expected_size() const { return size_given ? size : -1; }
  bool size_given = false;
};

struct Manifest {
  Descriptor config;
  std::vector<Descriptor> layers;
};

// What a container started from the image runs (the "config" object of an image config).
struct RunConfig {
  std::vector<std::string> entrypoint, cmd, env;
  std::string working_dir, user;
};

struct ImageConfig {
  std::string architecture, os, created;
  std::vector<Digest> diff_ids;  // rootfs.diff_ids, bottom layer first
  RunConfig run;
};

Result<Manifest> parse_manifest(const std::string& json);
Result<ImageConfig> parse_config(const std::string& json);

// Serialises an OCI image manifest.
std::string manifest_json(const Manifest& m);
// A minimal image config for a plain rootfs tarball: one layer, /bin/sh, the default PATH.
std::string minimal_config_json(const Digest& diff_id, const std::string& created);

}  // namespace vessel::image
