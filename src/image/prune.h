// `vessel image prune`: removes dangling images (no name, no container) and what
// no image and no container uses: blobs and unpacked layers left by builds
// (intermediate stages, replaced tags), and the build-cache records that point at them.
#pragma once

#include <cstdint>

#include "common/error.h"
#include "image/store.h"

namespace vessel::image {

struct PruneResult {
  int images = 0, blobs = 0, layers = 0, cache_records = 0;
  int temporaries = 0;  // tmp/ entries of dead imports and builds
  int64_t bytes = 0;  // of the removed blobs
};

Result<PruneResult> prune_store(Store& store);

}  // namespace vessel::image
