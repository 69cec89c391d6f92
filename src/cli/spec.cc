// vessel spec [--bundle DIR] [--rootless] [--hardened]
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "common/fs.h"
#include "common/strings.h"
#include "oci/defaults.h"

namespace vessel::cli {
namespace {

struct SpecArgs {
  std::string bundle = ".";
  bool rootless = false;
  bool hardened = false;
};

void add_spec(CLI::App& app, Globals&) {
  auto a = std::make_shared<SpecArgs>();
  auto* cmd = app.add_subcommand("spec", "write a default config.json into the bundle");
  cmd->add_option("-b,--bundle", a->bundle, "bundle directory");
  cmd->add_flag("--rootless", a->rootless, "a config for an unprivileged user (user namespace)");
  cmd->add_flag("--hardened", a->hardened,
                "vessel's defaults instead of runc's: a cgroup namespace, the default seccomp profile, no ambient capabilities");
  cmd->callback([a] {
    std::string path = path_join(a->bundle, "config.json");
    if (path_exists(path)) return report(Error(EEXIST, cat("spec: ", path, " already exists")));
    finish(write_file(path, oci::default_spec_json(a->rootless, a->hardened, ::getuid(), ::getgid()), O_EXCL, 0644));
  });
}

VerbRegistration reg_spec(10, add_spec);

}  // namespace
}  // namespace vessel::cli
