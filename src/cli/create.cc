// vessel create [--bundle DIR] [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "container/lifecycle.h"

namespace vessel::cli {
namespace {

void add_create(CLI::App& app, Globals& g) {
  auto o = std::make_shared<container::CreateOptions>();
  auto* cmd = app.add_subcommand("create", "create a container, its init waiting for start");
  cmd->add_option("-b,--bundle", o->bundle, "bundle directory (default: current directory)");
  cmd->add_option("--pid-file", o->pid_file, "write the init's pid to this file");
  cmd->add_option("--console-socket", o->console_socket, "unix socket that receives the pty master");
  cmd->add_flag("--no-pivot", o->no_pivot, "chroot instead of pivot_root");
  cmd->add_flag("--no-new-keyring", o->no_new_keyring, "keep the caller's session keyring");
  cmd->add_option("--preserve-fds", o->preserve_fds, "pass N extra fds (from 3) to the process");
  cmd->add_option("id", o->id, "container ID")->required();
  cmd->callback([o, &g] {
    o->root = g.root;
    o->systemd_cgroup = g.systemd_cgroup;
    if (auto st = check_cgroup_driver(g); !st) return report(st.error());
    if (auto st = protect_binary(); !st) return report(st.error());
    auto r = container::create(*o);
    if (!r) report(std::move(r).error().context(cat_id("create", o->id)));
  });
}

VerbRegistration reg(20, add_create);

}  // namespace
}  // namespace vessel::cli
