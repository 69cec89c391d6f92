// vessel create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
#include <CLI/CLI.hpp>
#include <optional>

#include "cli/cli.h"
#include "common/fs.h"
#include "container/lifecycle.h"
#include "image/bundle.h"

namespace vessel::cli {
namespace {

void add_create(CLI::App& app, Globals& g) {
  auto o = std::make_shared<container::CreateOptions>();
  auto image_ref = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("create", "create a container, its init waiting for start");
  cmd->add_option("-b,--bundle", o->bundle, "bundle directory (default: current directory)");
  cmd->add_option("--pid-file", o->pid_file, "write the init's pid to this file");
  cmd->add_option("--console-socket", o->console_socket, "unix socket that receives the pty master");
  cmd->add_flag("--no-pivot", o->no_pivot, "chroot instead of pivot_root");
  cmd->add_flag("--no-new-keyring", o->no_new_keyring, "keep the caller's session keyring");
  cmd->add_option("--preserve-fds", o->preserve_fds, "pass N extra fds (from 3) to the process");
  cmd->add_option("--image", *image_ref, "create it from this image of the image store (bundle built there)");
  cmd->add_option("id", o->id, "container ID")->required();
  cmd->callback([o, image_ref, &g] {
    o->root = g.root;
    o->systemd_cgroup = g.systemd_cgroup;
    if (auto st = check_cgroup_driver(g); !st) return report(st.error());
    if (auto st = protect_binary(); !st) return report(st.error());
    std::optional<image::Store> store;
    if (!image_ref->empty()) {
      auto s = image::Store::open(g.image_root);
      if (!s) return report(std::move(s).error());
      store.emplace(std::move(*s));
      auto bundle = image::create_bundle(*store, {*image_ref, o->id, {}, absolute_path(g.root)});
      if (!bundle) return report(std::move(bundle).error().context(cat_id("create", o->id)));
      o->bundle = *bundle;
    }
    auto r = container::create(*o);
    if (!r) {
      if (store) (void)image::remove_bundle(*store, o->id);
      report(std::move(r).error().context(cat_id("create", o->id)));
    }
  });
}

VerbRegistration reg_create(20, add_create);

}  // namespace
}  // namespace vessel::cli
