// One-line examples in every verb's --help, the walk over the verb tree that
// the documentation generators share, and "did you mean" for misspelt verbs.
#include <CLI/CLI.hpp>
#include <map>

#include "cli/doc.h"
#include "common/suggest.h"

namespace vessel::cli {
namespace {

// The example of each verb, by its command path without "vessel ". A verb may
// instead set its own footer starting with "Example: ". `vessel __doc check`
// (a test) fails when a verb has neither.
const std::map<std::string, std::string>& examples() {
  static const std::map<std::string, std::string> table = {
      {"", "cd bundle && vessel spec && vessel run demo   # bundle/rootfs holds the container's files"},
      {"spec", "cd bundle && vessel spec   # writes config.json for the rootfs in bundle/rootfs"},
      {"create", "vessel create --bundle ./bundle --pid-file c1.pid c1 && vessel start c1"},
      {"run", "vessel run --bundle ./bundle c1   # or from the image store: vessel run --image busybox --rm echo hi"},
      {"start", "vessel start c1"},
      {"exec", "vessel exec --tty c1 sh   # --cgroup memory:sub runs it in a sub-cgroup"},
      {"state", "vessel state c1"},
      {"list", "vessel list --format json"},
      {"kill", "vessel kill c1 KILL"},
      {"pause", "vessel pause c1"},
      {"resume", "vessel resume c1"},
      {"update", "vessel update --memory 256M --pids-limit 100 c1"},
      {"ps", "vessel ps c1"},
      {"events", "vessel events --stats c1"},
      {"delete", "vessel delete --force c1"},
      {"checkpoint", "vessel checkpoint --image-path /var/lib/ckpt/c1 --leave-running c1"},
      {"restore", "vessel restore --image-path /var/lib/ckpt/c1 --bundle ./bundle --detach c2"},
      {"features", "vessel features"},
      {"help", "vessel help exec   # the same as vessel exec --help"},
      {"vm", "vessel vm run --kernel /boot/vmlinuz --initrd initrd.img --memory 512M --cmdline console=ttyS0"},
      {"vm run", "vessel vm run --kernel /boot/vmlinuz --initrd initrd.img --memory 512M --cmdline console=ttyS0"},
      {"vm create", "vessel vm create --name web && curl --unix-socket /run/vessel/vm/web/api.sock -X PUT http://localhost/boot-source -d @boot.json"},
      {"vm start", "vessel vm start web"},
      {"vm list", "vessel vm list --format json"},
      {"vm state", "vessel vm state --stats web"},
      {"vm pause", "vessel vm pause web"},
      {"vm resume", "vessel vm resume web"},
      {"vm stop", "vessel vm stop --timeout 30 web"},
      {"vm kill", "vessel vm kill web KILL"},
      {"vm delete", "vessel vm delete --force web"},
      {"vm console", "vessel vm console web   # Ctrl-] detaches"},
      {"vm balloon", "vessel vm balloon web --target 256M"},
      {"vm memory", "vessel vm memory --format json"},
      {"vm snapshot", "vessel vm snapshot web /var/lib/snapshots/web"},
      {"vm restore", "vessel vm restore /var/lib/snapshots/web --name web2 -d"},
      {"vm clone", "vessel vm clone /var/lib/snapshots/web --count 4"},
      {"vm snapshot-merge", "vessel vm snapshot-merge /var/lib/snapshots/web-diff /var/lib/snapshots/web"},
      {"vm receive", "vessel vm receive --listen tcp:0.0.0.0:4444 --name web -d"},
      {"vm migrate", "vessel vm migrate web --to tcp:10.0.0.2:4444 --max-downtime 50"},
      {"vm upgrade", "vessel vm upgrade web   # a new VMM process of this binary takes the VM over, same id"},
      {"image", "vessel image import busybox.tar --name busybox && vessel run --image busybox --rm echo hi"},
      {"image import", "vessel image import busybox.tar --name busybox"},
      {"image export", "vessel image export busybox busybox.tar   # an oci-archive: podman load -i busybox.tar"},
      {"image ls", "vessel image ls --format json"},
      {"image inspect", "vessel image inspect busybox"},
      {"image rm", "vessel image rm busybox:latest"},
      {"image tag", "vessel image tag busybox busybox:v1"},
      {"image build", "vessel image build -t hello -f Dockerfile ./context"},
      {"image prune", "vessel image prune"},
  };
  return table;
}

constexpr const char* kExamplePrefix = "Example: ";

// The table's key of a verb: its command path without "vessel".
std::string table_key(const CLI::App& verb) {
  std::string p = command_path(verb);
  return p.size() > 7 ? p.substr(7) : std::string();
}

void add_examples_below(CLI::App& app) {
  if (app.get_footer().empty()) {
    auto it = examples().find(table_key(app));
    if (it != examples().end()) app.footer(kExamplePrefix + it->second);
  }
  for (auto* sub : app.get_subcommands([](CLI::App*) { return true; })) add_examples_below(*sub);
}

// The names (and aliases) of the verbs under `app`.
std::vector<std::string> verb_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (auto* v : visible_verbs(app)) {
    names.push_back(v->get_name());
    for (auto& a : v->get_aliases()) names.push_back(a);
  }
  return names;
}

}  // namespace

std::vector<const CLI::App*> visible_verbs(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* a) { return !a->get_group().empty() && a->get_name().rfind("__", 0) != 0; });
}

std::vector<const CLI::Option*> visible_flags(const CLI::App& app) {
  const CLI::Option* help = app.get_help_ptr();
  return app.get_options([help](const CLI::Option* o) {
    return o != help && o->nonpositional() && !o->get_group().empty();
  });
}

std::vector<const CLI::Option*> positionals(const CLI::App& app) {
  return app.get_options([](const CLI::Option* o) { return !o->nonpositional(); });
}

std::string command_path(const CLI::App& app) {
  std::string p = app.get_parent() ? command_path(*app.get_parent()) + " " + app.get_name() : "vessel";
  return p;
}

std::string flag_names(const CLI::Option& o) {
  std::string s;
  for (auto& n : o.get_snames()) s += (s.empty() ? "-" : ", -") + n;
  for (auto& n : o.get_lnames()) s += (s.empty() ? "--" : ", --") + n;
  return s;
}

void add_examples(CLI::App& app) { add_examples_below(app); }

std::string example_of(const CLI::App& verb) {
  std::string footer = verb.get_footer();
  if (footer.rfind(kExamplePrefix, 0) == 0) {
    footer = footer.substr(std::string(kExamplePrefix).size());
    return footer.substr(0, footer.find('\n'));
  }
  auto it = examples().find(table_key(verb));
  return it == examples().end() ? std::string() : it->second;
}

std::string unknown_verb_message(const CLI::App& app, int argc, char** argv) {
  const CLI::App* node = &app;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") return {};
    if (!a.empty() && a[0] == '-') {
      if (a.find('=') != std::string::npos) continue;
      const CLI::Option* opt = node->get_option_no_throw(a);
      if (opt && opt->get_items_expected_min() > 0) ++i;  // skip the option's value
      continue;
    }
    if (visible_verbs(*node).empty()) return {};  // an argument of a verb, not a verb
    const CLI::App* next = nullptr;
    for (auto* v : node->get_subcommands([](const CLI::App*) { return true; }))
      if (v->check_name(a)) next = v;
    if (next) {
      node = next;
      continue;
    }
    std::string prefix = node == &app ? "" : command_path(*node).substr(7) + " ";
    std::string msg = "unknown command \"" + prefix + a + "\"";
    std::string best = closest_match(a, verb_names(*node));
    if (!best.empty()) return msg + "; did you mean \"" + prefix + best + "\"?";
    return msg + " (see '" + command_path(*node) + " --help')";
  }
  return {};
}

}  // namespace vessel::cli
