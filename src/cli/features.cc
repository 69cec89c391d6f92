// vessel features: what this runtime implements (runtime-spec features.md).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/cli.h"
#include "oci/defaults.h"

namespace vessel::cli {
namespace {

void add_features(CLI::App& app, Globals&) {
  auto* cmd = app.add_subcommand("features", "show the enabled features (JSON)");
  cmd->callback([] { std::fputs(oci::features_json().c_str(), stdout); });
}

VerbRegistration reg_features(90, add_features);

}  // namespace
}  // namespace vessel::cli
