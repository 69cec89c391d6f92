// vessel pause ID, vessel resume ID
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "container/control.h"

namespace vessel::cli {
namespace {

void add_pause(CLI::App& app, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("pause", "freeze every process of a container");
  cmd->add_option("id", *id, "container ID")->required();
  cmd->callback([id, &g] { finish(container::pause(g.root, *id)); });
}

void add_resume(CLI::App& app, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("resume", "thaw a paused container");
  cmd->add_option("id", *id, "container ID")->required();
  cmd->callback([id, &g] { finish(container::resume(g.root, *id)); });
}

VerbRegistration reg_pause(62, add_pause);
VerbRegistration reg_resume(63, add_resume);

}  // namespace
}  // namespace vessel::cli
