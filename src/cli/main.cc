// vessel: entry point. Parses global flags, then dispatches to a verb.
#include <CLI/CLI.hpp>
#include <seccomp.h>

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "cli/cli.h"
#include "cli/doc.h"
#include "container/sealed_exe.h"
#include "common/log.h"
#include "common/strings.h"

namespace vessel::cli {
namespace {
int g_exit_code = 0;

std::vector<std::pair<int, AddVerb>>& verbs() {
  static std::vector<std::pair<int, AddVerb>> v;
  return v;
}
}  // namespace

VerbRegistration::VerbRegistration(int order, AddVerb add) { verbs().emplace_back(order, add); }

void set_exit_code(int code) { g_exit_code = code; }

void report(const Error& e) {
  std::fprintf(stderr, "vessel: %s\n", e.message().c_str());
  if (log::to_file()) log::error("vessel", e.message());
  g_exit_code = 1;
}

std::string cat_id(const char* verb, const std::string& id) { return std::string(verb) + " " + id; }

Status protect_binary() { return container::ensure_sealed_exe(original_argv()); }

Status check_cgroup_driver(const Globals& g) {
  if (g.systemd_cgroup)
    return Error(ENOTSUP, "--systemd-cgroup: the systemd cgroup driver is not supported yet; use cgroupfs paths");
  return ok();
}

void finish(const Status& s) {
  if (!s) report(s.error());
}

}  // namespace vessel::cli

namespace vessel::cli {
namespace {
char** g_argv = nullptr;
}
char** original_argv() { return g_argv; }
}  // namespace vessel::cli

int main(int argc, char** argv) {
  using namespace vessel;
  vessel::cli::g_argv = argv;
  using namespace vessel::cli;
  CLI::App app{"vessel: an OCI container runtime and a KVM virtual machine monitor"};
  app.require_subcommand(1);
  Globals g;
  // runc's lines: version, commit, spec, then the libraries (runc: go, libseccomp).
  const scmp_version* seccomp_lib = seccomp_version();
  app.set_version_flag("-v,--version", cat("vessel version ", VESSEL_VERSION, "\ncommit: ", VESSEL_COMMIT,
                                           "\nspec: 1.2.0\nlibseccomp: ", seccomp_lib->major, ".", seccomp_lib->minor,
                                           ".", seccomp_lib->micro));
  app.add_option("--root", g.root, "directory for container state (default /run/vessel)");
  app.add_option("--image-root", g.image_root, "directory of the image store (default /var/lib/vessel)");
  app.add_option("--log", g.log, "log file (default stderr)");
  app.add_option("--log-format", g.log_format, "log format: text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", g.debug, "log debug messages");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup, "use the systemd cgroup driver");
  // Accepted for compatibility with runc's command line; no effect.
  std::string criu, rootless;
  app.add_option("--criu", criu)->group("");
  app.add_option("--rootless", rootless)->group("");

  auto configure_log = [&] {
    log::configure(g.log, g.log_format == "json" ? log::Format::kJson : log::Format::kText,
                   g.debug ? log::Level::kDebug : log::Level::kWarn);
  };
  app.parse_complete_callback(configure_log);

  auto& vs = verbs();
  std::sort(vs.begin(), vs.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, add] : vs) add(app, g);
  add_examples(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // A verb vessel lacks would otherwise read "A subcommand is required" or
    // "arguments were not expected". Say which, with the closest verb, on
    // stderr and in --log, where podman looks for the runtime's error. The
    // global options are already stored when CLI11 checks for the subcommand.
    if (auto msg = unknown_verb_message(app, argc, argv); !msg.empty()) {
      configure_log();
      report(Error::invalid(msg));
      return g_exit_code;
    }
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return g_exit_code;
}
