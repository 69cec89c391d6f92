// vessel kill [--all] ID [SIGNAL]
#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "container/lifecycle.h"

namespace vessel::cli {
namespace {

struct KillArgs {
  std::string id;
  std::string signal = "SIGTERM";
  bool all = false;
};

void add_kill(CLI::App& app, Globals& g) {
  auto a = std::make_shared<KillArgs>();
  auto* cmd = app.add_subcommand("kill", "send a signal to the container's init (default SIGTERM)");
  cmd->add_flag("-a,--all", a->all, "send it to every process of the container");
  cmd->add_option("id", a->id, "container ID")->required();
  cmd->add_option("signal", a->signal, "signal name or number");
  cmd->callback([a, &g] {
    auto sig = container::parse_signal(a->signal);
    if (!sig) return report(std::move(sig).error());
    if (auto st = container::kill(g.root, a->id, *sig, a->all); !st) report(std::move(st).error());
  });
}

VerbRegistration reg_kill(60, add_kill);

}  // namespace
}  // namespace vessel::cli
