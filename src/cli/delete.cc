// vessel delete [--force] ID
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "container/lifecycle.h"

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
    // Like runc, deleting a container that is already gone with --force is not an error.
    if (!st && !(a->force && st.error().code() == ENOENT)) report(std::move(st).error());
  });
}

VerbRegistration reg(70, add_delete);

}  // namespace
}  // namespace vessel::cli
