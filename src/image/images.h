// `vessel image ls / inspect / rm` over the store.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "image/manifest.h"
#include "image/store.h"

namespace vessel::image {

struct ImageInfo {
  Digest digest;  // of the manifest: the image's identity
  std::vector<std::string> names;
  std::string created;
  int64_t size = 0;  // config + compressed layers
  Manifest manifest;
  ImageConfig config;
};

Result<std::vector<ImageInfo>> list_images(const Store& store);
// By NAME[:TAG], sha256:<hex> or a unique hex prefix.
Result<ImageInfo> inspect_image(const Store& store, const std::string& ref);

// JSON for `image ls --format json` and `image inspect`.
std::string images_json(const std::vector<ImageInfo>& images);
std::string image_json(const ImageInfo& image);

// Gives the image `ref` the name `name` (NAME[:TAG]), taking it off any other image.
Status tag_image(Store& store, const std::string& ref, const std::string& name);

// Removes a name; when the image has no name left (or `ref` is its digest) removes the image
// and the blobs and layers no other image (or container) uses. Refuses while a container uses it.
Status remove_image(Store& store, const std::string& ref);

// Adds the blobs (manifest, config, layer blobs) and the layers (diff IDs) that `manifest` needs.
void add_image_refs(const Store& store, const Digest& manifest, std::set<std::string>& blobs, std::set<std::string>& layers);

// Manifest digests of images that containers created from them still use.
std::vector<Digest> images_in_use(const Store& store);

}  // namespace vessel::image
