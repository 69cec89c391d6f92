// The filesystem a build step works on: the stage's layers mounted as an
// overlay with a fresh upper directory, under <image-root>/tmp/step-*/.
// RUN executes a container on it, COPY and ADD write into it; commit() turns
// what the step changed (the upper directory) into a layer of the store.
// Destroying it unmounts and removes everything it made.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "image/digest.h"
#include "image/layer_writer.h"
#include "image/store.h"

namespace vessel::image::build {

class WorkRoot {
 public:
  // Mounts `diff_ids` (bottom first; may be empty) at <dir>/rootfs; `readonly` for a source of COPY --from.
  static Result<WorkRoot> mount(Store& store, const std::vector<Digest>& diff_ids, bool readonly = false);
  WorkRoot(WorkRoot&& o) noexcept;
  WorkRoot& operator=(WorkRoot&&) = delete;
  WorkRoot(const WorkRoot&) = delete;
  ~WorkRoot();

  const std::string& dir() const { return dir_; }          // holds config.json for RUN
  std::string rootfs() const { return dir_ + "/rootfs"; }  // the overlay mount
  int rootfs_fd() const { return rootfs_fd_.get(); }       // an O_PATH fd of the mounted root

  // A file the step created only as a mount point (RUN's /etc/resolv.conf when the image has
  // none): commit() leaves it out of the layer when it is still an empty regular file.
  void drop_on_commit(const std::string& path) { drops_.push_back(path); }

  // Unmounts the overlay and stores the upper directory as a layer (blob + unpacked layer dir).
  Result<LayerBlob> commit(Store& store);

 private:
  WorkRoot(std::string dir) : dir_(std::move(dir)) {}
  void release();
  std::string dir_;
  UniqueFd rootfs_fd_;
  bool mounted_ = false;
  std::vector<std::string> drops_;
};

}  // namespace vessel::image::build
