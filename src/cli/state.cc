// vessel state ID, vessel list [--format table|json] [--quiet]
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "container/lifecycle.h"

namespace vessel::cli {
namespace {

void add_state(CLI::App& app, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("state", "print the state of a container (JSON)");
  cmd->add_option("id", *id, "container ID")->required();
  cmd->callback([id, &g] {
    container::ContainerStatus status;
    auto s = container::load_state(g.root, *id, &status);
    if (!s) return report(std::move(s).error());
    std::printf("%s\n", container::state_json(*s, status).c_str());
  });
}

struct ListArgs {
  std::string format = "table";
  bool quiet = false;
};

void add_list(CLI::App& app, Globals& g) {
  auto a = std::make_shared<ListArgs>();
  auto* cmd = app.add_subcommand("list", "list containers");
  cmd->alias("ls");
  cmd->add_option("-f,--format", a->format, "table or json")->check(CLI::IsMember({"table", "json"}));
  cmd->add_flag("-q,--quiet", a->quiet, "print only the IDs");
  cmd->callback([a, &g] {
    // runc's key order (engines and scripts compare the text).
    nlohmann::ordered_json arr = nlohmann::ordered_json::array();
    if (!a->quiet && a->format == "table") std::printf("%-12s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER");
    for (const auto& id : container::list_ids(g.root)) {
      container::ContainerStatus status;
      auto s = container::load_state(g.root, id, &status);
      if (!s) continue;  // deleted meanwhile
      int pid = status == container::ContainerStatus::kStopped ? 0 : s->pid;
      if (a->quiet) {
        std::printf("%s\n", id.c_str());
      } else if (a->format == "json") {
        nlohmann::ordered_json j = {{"ociVersion", s->oci_version}, {"id", id}, {"pid", pid},
                            {"status", container::status_name(status)}, {"bundle", s->bundle},
                            {"rootfs", s->rootfs}, {"created", s->created}, {"owner", s->owner}};
        if (!s->annotations.empty()) j["annotations"] = s->annotations;
        arr.push_back(j);
      } else {
        std::printf("%-12s %-8d %-10s %-40s %-30s %s\n", id.c_str(), pid, container::status_name(status),
                    s->bundle.c_str(), s->created.c_str(), s->owner.c_str());
      }
    }
    if (!a->quiet && a->format == "json") std::printf("%s\n", arr.dump().c_str());
  });
}

VerbRegistration reg_state(40, add_state);
VerbRegistration reg_list(45, add_list);

}  // namespace
}  // namespace vessel::cli
