// vessel run [--bundle DIR] [--detach] [--pid-file F] [--console-socket S] ID
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "container/run.h"

namespace vessel::cli {
namespace {

struct RunArgs {
  container::CreateOptions o;
  bool detach = false;
};

void add_run(CLI::App& app, Globals& g) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "create and start a container; wait for it unless --detach");
  cmd->add_option("-b,--bundle", a->o.bundle, "bundle directory (default: current directory)");
  cmd->add_flag("-d,--detach", a->detach, "return once the container has started");
  cmd->add_option("--pid-file", a->o.pid_file, "write the init's pid to this file");
  cmd->add_option("--console-socket", a->o.console_socket, "unix socket that receives the pty master");
  cmd->add_flag("--no-pivot", a->o.no_pivot, "chroot instead of pivot_root");
  cmd->add_flag("--no-new-keyring", a->o.no_new_keyring, "keep the caller's session keyring");
  cmd->add_option("--preserve-fds", a->o.preserve_fds, "pass N extra fds (from 3) to the process");
  cmd->add_option("id", a->o.id, "container ID")->required();
  cmd->callback([a, &g] {
    a->o.root = g.root;
    if (auto st = check_cgroup_driver(g); !st) return report(st.error());
    if (auto st = protect_binary(); !st) return report(st.error());
    auto r = container::run(a->o, a->detach);
    if (!r) return report(std::move(r).error());
    set_exit_code(*r);
  });
}

VerbRegistration reg(25, add_run);

}  // namespace
}  // namespace vessel::cli
