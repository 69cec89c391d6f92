// vessel events [--stats] [--interval 5s] ID
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli.h"
#include "container/events.h"

namespace vessel::cli {
namespace {

struct EventsArgs {
  std::string id;
  std::string interval = "5s";
  bool stats = false;
};

void add_events(CLI::App& app, Globals& g) {
  auto a = std::make_shared<EventsArgs>();
  auto* cmd = app.add_subcommand("events", "show a container's resource usage and OOM kills as JSON lines");
  cmd->add_flag("--stats", a->stats, "print the container's stats once, then exit");
  cmd->add_option("--interval", a->interval, "stats interval, Go duration syntax (5s, 500ms, 1m)")
      ->capture_default_str();
  cmd->add_option("id", a->id, "container ID")->required();
  cmd->callback([a, &g] {
    auto interval = container::parse_duration(a->interval);
    if (!interval) return report(std::move(std::move(interval).error()).context("--interval"));
    container::EventsOptions o{g.root, a->id, a->stats, *interval};
    finish(container::events(o, [](const std::string& line) {
      std::fputs(line.c_str(), stdout);
      std::fputc('\n', stdout);
      std::fflush(stdout);
    }));
  });
}

VerbRegistration reg_events(67, add_events);

}  // namespace
}  // namespace vessel::cli
