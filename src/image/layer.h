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

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "image/digest.h"

namespace vessel::image {

// OCI whiteout names in a layer tar: ".wh.NAME" hides NAME, the marker makes its directory opaque.
inline constexpr std::string_view kWhiteoutPrefix = ".wh.";
inline constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

enum class Compression { kNone, kGzip, kZstd };

// Compression of the stream behind fd, from its magic bytes (reads with pread at 0).
Result<Compression> detect_compression(int fd);
// The OCI media type of a layer with this compression.
std::string layer_media_type(Compression c);

// SHA-256 of the decompressed tar behind fd (gzip, zstd or plain): the layer's diff ID.
// The tar's headers are checked on the way (a pax or GNU long name with a NUL byte is
// refused: libarchive would truncate it), and a stream that decompresses to more than
// `max_bytes` is refused (EFBIG) as soon as it passes the limit.
Result<Digest> diff_id(int fd, uint64_t max_bytes = UINT64_MAX);

struct UnpackOptions {
  // Translate OCI whiteouts into overlayfs ones (off when unpacking an image archive itself).
  bool whiteouts = true;
  // The most bytes the entries may take (file contents plus 512 per entry); EFBIG beyond.
  uint64_t max_bytes = UINT64_MAX;
};

// Checks a decompressed tar stream fed in pieces: the pax and GNU long-name headers
// must not hide a NUL byte in a path (libarchive would cut the name there).
class TarHeaderScan {
 public:
  Status feed(const char* data, size_t n);

 private:
  Status header_done();
  Status extended_done();
  char block_[512];
  size_t have_ = 0;        // bytes of the current header in block_
  uint64_t skip_ = 0;      // data bytes (with padding) still to skip
  uint64_t collect_ = 0;   // extended-header bytes still to collect
  uint64_t pad_ = 0;       // padding after the collected data
  char type_ = 0;
  std::string ext_;
  std::optional<uint64_t> size_override_;  // a pax "size" record for the next entry
};

// Unpacks the tar behind fd (read from offset 0) into the directory dir_fd.
Status unpack_tar(int fd, int dir_fd, const UnpackOptions& o = {});

// The components of a tar entry name ("./a//b/" -> {"a","b"}); an error for absolute paths and "..".
Result<std::vector<std::string>> entry_components(std::string_view name);

}  // namespace vessel::image
