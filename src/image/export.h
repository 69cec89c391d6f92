// `vessel image export`: writes an image of the store as an OCI image layout
// (image-spec image-layout.md) that podman, skopeo and umoci read:
//   oci-layout           {"imageLayoutVersion":"1.0.0"}
//   index.json           one manifest descriptor; its org.opencontainers.image.ref.name
//                        annotation is the image's full name ("localhost/foo:latest",
//                        "foo:latest"): `podman load` names the image after it, and
//                        `skopeo inspect oci:DIR:NAME` / `umoci unpack --image DIR:NAME` find it
//   blobs/sha256/<hex>   the manifest, config and layer blobs, exactly as stored
//                        (so the manifest digest is unchanged), each re-hashed on the way
// either as a directory or as an oci-archive (that layout in a tar).
//
// Nothing is half-written: the result is assembled under a temporary name next to
// PATH and renamed into place. A directory PATH must not exist or be empty (export
// makes a new layout; it does not add to an existing one); a tar PATH is replaced.
// The store is read without its lock, so an export never holds up imports or runs;
// every blob is re-hashed as it is copied, so a concurrent `image rm` can make an
// export fail but never lets it write a wrong blob.
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "image/digest.h"
#include "image/progress.h"
#include "image/store.h"

namespace vessel::image {

enum class ExportFormat {
  kOciLayout,   // "oci": a layout directory
  kOciArchive,  // "oci-archive": the layout in a tar
};

// "oci" or "oci-archive"; an empty string picks by PATH: oci-archive when it ends in ".tar".
Result<ExportFormat> export_format(std::string_view name, const std::string& path);

struct ExportResult {
  Digest manifest;
  std::string ref_name;  // the ref.name annotation written ("" when the image has no name)
};

// Exports the image `ref` (NAME[:TAG], digest or unique digest prefix) to `path`.
// Progress (copied blobs) goes to `progress`, or to a Progress of its own when null.
Result<ExportResult> export_image(const Store& store, const std::string& ref, const std::string& path, ExportFormat format,
                                  Progress* progress = nullptr);

}  // namespace vessel::image
