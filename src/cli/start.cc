// vessel start ID
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "container/lifecycle.h"

namespace vessel::cli {
namespace {

void add_start(CLI::App& app, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("start", "start the process of a created container");
  cmd->add_option("id", *id, "container ID")->required();
  cmd->callback([id, &g] {
    if (auto st = container::start(g.root, *id); !st) report(std::move(st).error());
  });
}

VerbRegistration reg_start(30, add_start);

}  // namespace
}  // namespace vessel::cli
