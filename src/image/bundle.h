// Bundles for containers run from an image: <image-root>/containers/<id>/ holds
//   config.json  the default spec with the image's process (args, env, cwd, user)
//   image.json   which image it came from (keeps the image's layers from `image rm`)
//                and the --root of the container using it (only that root's delete removes it)
//   upper/ work/ the container's own overlayfs layer
//   rootfs/      the overlayfs mount (image layers as read-only lowers), in the host mount namespace
// remove_bundle() unmounts and deletes it all; `vessel delete` and `run --rm` call it.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "image/manifest.h"
#include "image/store.h"
#include "image/user.h"

namespace vessel::image {

struct BundleOptions {
  std::string image;              // NAME[:TAG] or digest
  std::string id;                 // container ID
  std::vector<std::string> args;  // replaces the image's Cmd when not empty (Entrypoint stays)
  std::string state_root;         // --root of the container that will use the bundle (absolute)
};

// The config.json of a container of an image whose config is `run`, running as `user`
// (resolved against the image's rootfs by the caller; pure, for tests too).
Result<std::string> bundle_config_json(const RunConfig& run, const std::vector<std::string>& args,
                                       const std::string& hostname, const ResolvedUser& user);

// Builds and mounts the bundle; returns its directory. On failure nothing is left.
Result<std::string> create_bundle(Store& store, const BundleOptions& o);

// True when the store has a bundle for `id`.
bool has_bundle(const Store& store, const std::string& id);

// The --root recorded in the bundle of `id` ("" for a bundle that records none).
Result<std::string> bundle_root(const Store& store, const std::string& id);

// Unmounts the rootfs and removes the bundle (upper and work dirs with it); a missing bundle is fine.
Status remove_bundle(Store& store, const std::string& id);

// A fresh random container ID (12 hex digits).
std::string random_id();

}  // namespace vessel::image
