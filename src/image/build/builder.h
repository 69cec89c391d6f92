// `vessel image build`: runs a Dockerfile (image/build/dockerfile.h) against
// the image store. Each stage starts FROM an image of the store, an earlier
// stage or `scratch`; RUN, COPY and ADD each add a layer (made from what the
// step changed in an overlay upper directory, see workroot.h), the other
// instructions change the image config. Layer steps are cached (cache.h):
// a rebuild with nothing changed runs no RUN and gives the same image digest.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "image/digest.h"
#include "image/store.h"

namespace vessel::image::build {

struct BuildOptions {
  std::string context = ".";                                    // the build context directory
  std::string file;                                             // default: CONTEXT/Dockerfile or CONTEXT/Containerfile
  std::vector<std::string> tags;                                // -t NAME[:TAG]
  std::vector<std::pair<std::string, std::string>> build_args;  // --build-arg K=V
  std::string target;                                           // --target STAGE: stop after it
  bool no_cache = false;                                        // run every step
  bool quiet = false;                                           // RUN output only when it fails
  bool progress = false;                                        // show steps even when stderr is no terminal
  std::string runtime_root = "/run/vessel";                     // --root of the RUN containers
};

struct BuildResult {
  Digest manifest;
  std::vector<std::string> names;
  int steps_run = 0;     // layer steps executed
  int steps_cached = 0;  // layer steps taken from the cache
};

Result<BuildResult> build_image(Store& store, const BuildOptions& o);

}  // namespace vessel::image::build
