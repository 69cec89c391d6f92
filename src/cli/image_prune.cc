// vessel image prune: removes blobs, layers and build-cache records no image or container uses.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli.h"
#include "image/progress.h"
#include "image/prune.h"

namespace vessel::cli {
namespace {

void add_image_prune(CLI::App& app, Globals& g) {
  auto* cmd = app.get_subcommand("image")->add_subcommand("prune", "remove dangling images and what no image or container uses");
  cmd->callback([&g] {
    auto store = image::Store::open(g.image_root);
    if (!store) return report(std::move(store).error());
    auto r = image::prune_store(*store);
    if (!r) return report(std::move(r).error().context("image prune"));
    std::printf("removed %d dangling images, %d blobs (%s), %d layers, %d build-cache records, %d temporaries\n", r->images,
                r->blobs, image::human_size(r->bytes).c_str(), r->layers, r->cache_records, r->temporaries);
  });
}

// After `image` (order 90) registered the image command.
VerbRegistration reg_image_prune(92, add_image_prune);

}  // namespace
}  // namespace vessel::cli
