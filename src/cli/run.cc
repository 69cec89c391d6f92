// vessel run [--bundle DIR] [--detach] [--pid-file F] [--console-socket S] ID
// vessel run --image NAME [--rm] [--name ID] [-- ARGS...]
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "common/fs.h"
#include "container/run.h"
#include "image/bundle.h"

namespace vessel::cli {
namespace {

struct RunArgs {
  container::CreateOptions o;
  bool detach = false;
  bool keep = false;              // --keep: leave the stopped container for `delete`
  std::string image;              // --image: run from the image store, bundle built there
  std::string name;               // --name: the container ID with --image
  bool rm = false;                // --rm: delete the image bundle when the process exits
  std::vector<std::string> args;  // with --image: the command (all positional arguments)
};

// `run --image`: builds the bundle, runs it, and with --rm removes it again.
void run_image(RunArgs& a, Globals& g) {
  std::vector<std::string> command;
  if (!a.o.id.empty()) command.push_back(a.o.id);
  command.insert(command.end(), a.args.begin(), a.args.end());
  a.o.id = a.name.empty() ? image::random_id() : a.name;
  if (a.rm && a.detach) return report(Error::invalid("run: --rm and --detach cannot be combined"));
  auto store = image::Store::open(g.image_root);
  if (!store) return report(std::move(store).error());
  auto bundle = image::create_bundle(*store, {a.image, a.o.id, command, absolute_path(g.root)});
  if (!bundle) return report(std::move(bundle).error().context(cat_id("run", a.o.id)));
  a.o.bundle = *bundle;
  auto r = container::run(a.o, a.detach);
  if (!r || a.rm) {
    if (auto st = image::remove_bundle(*store, a.o.id); !st) report(std::move(st).error());
  }
  if (!r) return report(std::move(r).error());
  set_exit_code(*r);
}

void add_run(CLI::App& app, Globals& g) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "create and start a container; wait for it unless --detach");
  cmd->add_option("-b,--bundle", a->o.bundle, "bundle directory (default: current directory)");
  cmd->add_flag("-d,--detach", a->detach, "return once the container has started");
  cmd->add_flag("--keep", a->keep, "do not delete the container after it exits");
  cmd->add_option("--pid-file", a->o.pid_file, "write the init's pid to this file");
  cmd->add_option("--console-socket", a->o.console_socket, "unix socket that receives the pty master");
  cmd->add_flag("--no-pivot", a->o.no_pivot, "chroot instead of pivot_root");
  cmd->add_flag("--no-new-keyring", a->o.no_new_keyring, "keep the caller's session keyring");
  cmd->add_option("--preserve-fds", a->o.preserve_fds, "pass N extra fds (from 3) to the process");
  cmd->add_option("--image", a->image, "run a container of this image (NAME[:TAG] or digest) from the image store");
  cmd->add_option("--name", a->name, "with --image: the container ID (default: random)");
  cmd->add_flag("--rm", a->rm, "with --image: delete the container when its process exits");
  cmd->add_option("id", a->o.id, "container ID (with --image: the first word of the command)");
  cmd->add_option("args", a->args, "with --image: the command, replacing the image's Cmd");
  cmd->callback([a, &g] {
    a->o.root = g.root;
    if (auto st = check_cgroup_driver(g); !st) return report(st.error());
    if (auto st = protect_binary(); !st) return report(st.error());
    if (!a->image.empty()) return run_image(*a, g);
    if (a->o.id.empty()) return report(Error::invalid("run: a container ID is required"));
    if (!a->args.empty()) return report(Error::invalid("run: extra arguments are only allowed with --image"));
    auto r = container::run(a->o, a->detach, a->keep);
    if (!r) return report(std::move(r).error());
    set_exit_code(*r);
  });
}

VerbRegistration reg_run(25, add_run);

}  // namespace
}  // namespace vessel::cli
