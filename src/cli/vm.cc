// PLACEHOLDER until the vmm branch lands: `vessel vm` is not built yet.
#include <CLI/CLI.hpp>

#include "cli/cli.h"

namespace vessel::cli {
namespace {
void add_vm(CLI::App& app, Globals&) {
  auto* cmd = app.add_subcommand("vm", "virtual machines (not built yet)");
  cmd->callback([] { report(Error(ENOSYS, "vm: not built yet")); });
}
VerbRegistration reg(100, add_vm);
}  // namespace
}  // namespace vessel::cli
