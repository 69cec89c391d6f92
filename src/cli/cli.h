// The command line: runc's global flags and one file per verb.
// CLI files only parse and print; the work lives in the library rooms.
#pragma once

#include <string>

#include "common/error.h"

namespace CLI {
class App;
}

namespace vessel::cli {

// Flags that come before the verb (runc's global options).
struct Globals {
  std::string root = "/run/vessel";
  std::string image_root = "/var/lib/vessel";  // --image-root: the image store (src/image/store.h)
  std::string log;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
};

// A verb adds its subcommand to the app; its callback sets the exit code.
using AddVerb = void (*)(CLI::App& app, Globals& g);

// Each verb file registers itself with a static VerbRegistration, so main()
// needs no list of verbs: `static VerbRegistration r(50, add_create);`.
// `order` sorts the verbs in --help.
struct VerbRegistration {
  VerbRegistration(int order, AddVerb add);
};

// The exit code that main() returns once the verb has run.
void set_exit_code(int code);

// Reports an error on stderr (and to --log) and sets exit code 1.
void report(const Error& e);
// Reports the error of `s`, if any.
void finish(const Status& s);

}  // namespace vessel::cli

namespace vessel::cli {
// "create c1": the context prefix of a verb's errors.
std::string cat_id(const char* verb, const std::string& id);
// The argv main() got, for re-executing ourselves.
char** original_argv();
// Verbs that start container processes call this first (CVE-2019-5736); see container/sealed_exe.h.
Status protect_binary();
// Rejects --systemd-cgroup until there is a systemd driver.
Status check_cgroup_driver(const Globals& g);
}  // namespace vessel::cli
