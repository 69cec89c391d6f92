// Layer tars from directories: the reverse of unpack_tar().
//
// write_layer() tars a directory tree (paths relative to it, entries sorted by
// name so the same tree gives the same tar), gzip-compresses it into a store
// blob and returns the blob's descriptor with the layer's diff ID (SHA-256 of
// the uncompressed tar). It reads only through fds below dir_fd and never
// follows a symlink.
//
// With `overlay_upper`, the tree is an overlayfs upper directory and its
// whiteouts become OCI whiteouts:
//   NAME as a character device 0:0           -> .wh.NAME
//   a directory with trusted.overlay.opaque=y -> its entries + .wh..wh..opq
// and overlay's other trusted.overlay.* attributes are dropped. Without it
// (a layer directory of the store, unpacked by unpack_tar) the same translation
// applies too, as store layers hold overlay-format whiteouts.
#pragma once

#include <string>

#include "common/error.h"
#include "image/digest.h"
#include "image/manifest.h"
#include "image/store.h"

namespace vessel::image {

struct LayerBlob {
  Descriptor descriptor;  // the gzip blob in the store (tar+gzip media type)
  Digest diff_id;         // SHA-256 of the uncompressed tar
};

struct LayerWriteOptions {
  // Every entry's mtime is clamped to at most this (seconds since the epoch; < 0: keep mtimes).
  long long clamp_mtime = -1;
};

// Tars dir_fd's tree into a new gzip blob of `store`.
Result<LayerBlob> write_layer(Store& store, int dir_fd, const LayerWriteOptions& o = {});

}  // namespace vessel::image
