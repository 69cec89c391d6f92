// vessel delete [--force] ID
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "common/fs.h"
#include "container/lifecycle.h"
#include "image/bundle.h"

namespace vessel::cli {
namespace {

struct DeleteArgs {
  std::string id;
  bool force = false;
};

void add_delete(CLI::App& app, Globals& g) {
  auto a = std::make_shared<DeleteArgs>();
  auto* cmd = app.add_subcommand("delete", "delete a container and everything it holds");
  cmd->alias("rm");
  cmd->add_flag("-f,--force", a->force, "kill it first if it is still running");
  cmd->add_option("id", a->id, "container ID")->required();
  cmd->callback([a, &g] {
    auto st = container::remove(g.root, a->id, a->force);
    bool gone = !st && st.error().code() == ENOENT;
    // A container run from an image also has a bundle in the image store: unmount and remove it
    // (also after a foreground `run --image`, which already removed the container's state).
    // Only the bundle of this root's container: the same ID may be another root's.
    bool image_bundle = false;
    if ((st || gone) && a->id.find('/') == std::string::npos &&
        path_exists(path_join(g.image_root, "containers/" + a->id))) {
      auto store = image::Store::open(g.image_root);
      if (!store) return report(std::move(store).error().context(cat_id("delete", a->id)));
      auto owner = image::bundle_root(*store, a->id);
      // A bundle that records no root (made before roots were recorded) goes with a container that was here.
      image_bundle = owner && (*owner == absolute_path(g.root) || (owner->empty() && st));
      if (image_bundle) {
        if (auto bs = image::remove_bundle(*store, a->id); !bs)
          return report(std::move(bs).error().context(cat_id("delete", a->id)));
      }
    }
    // Like runc, deleting a container that is already gone with --force is not an error.
    if (!st && !(gone && (a->force || image_bundle))) report(std::move(st).error());
  });
}

VerbRegistration reg_delete(70, add_delete);

}  // namespace
}  // namespace vessel::cli
