// `vessel image import`: brings an image into the store from
//   - an OCI image layout directory (oci-layout + index.json + blobs/),
//   - an oci-archive tar (such a layout in a tar),
//   - a docker-archive tar (`docker save` / `podman save`: manifest.json + config + layer tars),
//   - a plain rootfs tarball (becomes a one-layer image with a minimal config).
// Every blob is verified against its digest and every layer against its diff ID.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "image/digest.h"
#include "image/progress.h"
#include "image/store.h"

namespace vessel::image {

struct ImportResult {
  Digest manifest;
  std::vector<std::string> names;
};

// Imports PATH; `name` (NAME[:TAG], may be empty) names the image, replacing names the archive carries.
// Returns the images imported (one, except for a layout or archive holding several).
// A status line per blob copied and layer unpacked goes to `progress` (a Progress of its own when null:
// shown on a terminal only).
Result<std::vector<ImportResult>> import_image(Store& store, const std::string& path, const std::string& name,
                                               Progress* progress = nullptr);

// Unpacks the layer blob `blob` into layers/<diff_id> unless already there; checks the diff ID.
Status ensure_layer(Store& store, const Digest& blob, const Digest& diff_id, Progress* progress = nullptr);

}  // namespace vessel::image
