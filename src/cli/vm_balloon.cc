// `vessel vm balloon ID [--target SIZE] [--stats-interval S]`: the balloon of a
// running VM, through its API (PATCH /balloon, PATCH and GET
// /balloon/statistics). Parsing and printing only.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/vm.h"
#include "common/strings.h"
#include "vmm/api/client.h"
#include "vmm/instance/launch.h"

namespace vessel::cli {

namespace {
struct BalloonArgs {
  std::string id;
  std::string target;
  int64_t stats_interval = -1;
};
}  // namespace

void add_vm_balloon(CLI::App& vm, Globals& g) {
  auto a = std::make_shared<BalloonArgs>();
  auto* cmd = vm.add_subcommand("balloon",
                                "set a VM's balloon (the memory taken back from the guest) or print its statistics");
  cmd->add_option("id", a->id, "VM id")->required();
  cmd->add_option("--target", a->target, "balloon size, whole MiB (e.g. 0, 256M): PATCH /balloon amount_mib");
  cmd->add_option("--stats-interval", a->stats_interval, "seconds between statistics polls (0: off)");
  cmd->callback([a, &g] {
    finish([&]() -> Status {
      auto h = TRY(vmm::find_vm(g.root, a->id));
      if (!h.alive) return Error::invalid(cat("VM '", a->id, "' is not running"));
      const std::string& sock = h.record.api_sock;
      if (a->stats_interval >= 0)
        TRY(vmm::api::call_ok(sock, "PATCH", "/balloon/statistics",
                              nlohmann::json{{"stats_polling_interval_s", a->stats_interval}}.dump()));
      if (!a->target.empty()) {
        auto size = parse_size(a->target);
        if (!size || *size % (1 << 20) != 0)
          return Error::invalid(cat("--target: '", a->target, "' is not a size in whole MiB (e.g. 0, 256M)"));
        TRY(vmm::api::call_ok(sock, "PATCH", "/balloon", nlohmann::json{{"amount_mib", *size >> 20}}.dump()));
      }
      if (a->target.empty() && a->stats_interval < 0) {
        auto cfg = TRY(vmm::api::call_ok(sock, "GET", "/balloon"));
        auto stats = vmm::api::call(sock, "GET", "/balloon/statistics");
        nlohmann::json out = nlohmann::json::parse(cfg.body, nullptr, false);
        if (stats && stats->status == 200) out["statistics"] = nlohmann::json::parse(stats->body, nullptr, false);
        std::printf("%s\n", out.dump(2).c_str());
      }
      return ok();
    }().context(cat("balloon ", a->id)));
  });
}

}  // namespace vessel::cli
