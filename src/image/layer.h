// Layer tars: diff IDs, compression, and safe unpacking into a layer directory.
//
// Unpacking treats the tar as hostile: every entry is resolved one component at
// a time from the layer's directory fd (openat2 with RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), so ".." paths, absolute paths, paths through symlinks,
// hard links leaving the layer and device nodes are refused with an error that
// names the entry, and nothing is ever written outside the layer directory.
// OCI whiteouts become overlayfs whiteouts, so the directory can be an overlay lower:
//   .wh.NAME       -> NAME as a character device 0:0
//   .wh..wh..opq   -> the directory gets trusted.overlay.opaque=y
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "image/digest.h"

namespace vessel::image {

enum class Compression { kNone, kGzip, kZstd };

// Compression of the stream behind fd, from its magic bytes (reads with pread at 0).
Result<Compression> detect_compression(int fd);
// The OCI media type of a layer with this compression.
std::string layer_media_type(Compression c);

// SHA-256 of the decompressed tar behind fd (gzip, zstd or plain): the layer's diff ID.
Result<Digest> diff_id(int fd);

struct UnpackOptions {
  // Translate OCI whiteouts into overlayfs ones (off when unpacking an image archive itself).
  bool whiteouts = true;
};

// Unpacks the tar behind fd (read from offset 0) into the directory dir_fd.
Status unpack_tar(int fd, int dir_fd, const UnpackOptions& o = {});

// The components of a tar entry name ("./a//b/" -> {"a","b"}); an error for absolute paths and "..".
Result<std::vector<std::string>> entry_components(std::string_view name);

}  // namespace vessel::image
