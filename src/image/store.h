// The content store under --image-root:
//   blobs/sha256/<hex>   content-addressed blobs (manifests, indexes, configs, layer tars), verified on write and read
//   layers/<diffid hex>/ each layer unpacked once, never modified after (overlayfs lowers)
//   images.json          the name index (NameIndex), replaced atomically under `lock`
//   l/<short id>         short links to layers/<diffid hex>, named in overlayfs' lowerdir (see overlay.h)
//   empty/               the lower of images without layers
//   containers/<id>/     bundles of containers run from an image (see bundle.h)
//   tmp/                 work files, renamed into place when complete; named KIND-PID.START-XXXXXX
//                        after their owner, so that a later command removes those of a dead owner
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"
#include "common/unique_fd.h"
#include "image/digest.h"
#include "image/names.h"

namespace vessel::image {

// In a build step's temporary directory: "<runtime root>\n<container id>\n" of
// its RUN container while it runs, so that a build killed mid-RUN leaves
// nothing running once reclaim_temp() finds the directory.
inline constexpr const char* kStepContainerFile = "step.container";

// The default --image-root.
inline constexpr const char* kDefaultImageRoot = "/var/lib/vessel";

// An exclusive flock on the store; released when destroyed.
class StoreLock {
 public:
  explicit StoreLock(UniqueFd fd) : fd_(std::move(fd)) {}

 private:
  UniqueFd fd_;
};

class Store {
 public:
  // Opens (creating its directories) the store at `root`.
  static Result<Store> open(const std::string& root);

  const std::string& root() const { return root_; }
  std::string blob_path(const Digest& d) const;
  std::string layer_path(const Digest& diffid) const;
  std::string container_path(const std::string& id) const;

  bool has_blob(const Digest& d) const;
  // Stores `data`; returns its digest.
  Result<Digest> put_blob(std::string_view data);
  // Streams fd to a blob; with `expected`, the content must hash to it, and with
  // `expected_size` >= 0 have that many bytes (else nothing is stored).
  Result<Digest> ingest(int fd, const Digest* expected, int64_t expected_size = -1);
  // Reads a blob and checks that it still hashes to its name.
  Result<std::string> read_blob(const Digest& d) const;
  // Re-hashes a blob on disk.
  Status verify_blob(const Digest& d) const;
  Status remove_blob(const Digest& d);

  bool has_layer(const Digest& diffid) const;

  // Serialises every change of the store (import, rm, creating an image container).
  Result<StoreLock> lock();
  // Keeps garbage collection (`image rm`, `image prune`: exclusive) away from work that writes
  // blobs and layers before an image names them (`image build`: shared). Taken before lock().
  Result<StoreLock> gc_lock(bool exclusive);
  Result<NameIndex> load_index() const;
  Status save_index(const NameIndex& idx);

  // A new empty directory under tmp/ (the caller removes it), named after this process.
  Result<std::string> make_temp_dir(const std::string& prefix);
  // A mkstemp/mkdtemp template under tmp/ named after this process: tmp/PREFIX-PID.START-XXXXXX.
  std::string temp_template(const std::string& prefix) const;
  // Removes the tmp/ entries whose owner process is gone (a kill -9 of import or build);
  // with `legacy`, also entries not named after an owner (only safe under the exclusive gc lock).
  // Returns how many entries went.
  int reclaim_temp(bool legacy = false);

 private:
  explicit Store(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

// The current time as RFC 3339 UTC ("2024-05-01T12:00:00Z").
std::string now_rfc3339();

}  // namespace vessel::image
