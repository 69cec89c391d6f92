// Memory overcommit verbs. `vessel vm balloon ID [--target SIZE]
// [--stats-interval S]`: the balloon of a running VM, through its API (PATCH
// /balloon, PATCH and GET /balloon/statistics). `vessel vm memory`: the
// host-wide report (KSM counters, each VM's RSS, mergeable flag, pages merged).
// Parsing and printing only.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/vm.h"
#include "common/strings.h"
#include "vmm/api/client.h"
#include "vmm/instance/launch.h"
#include "vmm/kvm/ksm.h"

namespace vessel::cli {

namespace {
struct BalloonArgs {
  std::string id;
  std::string target;
  int64_t stats_interval = -1;
};

std::string mib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(bytes) / (1 << 20));
  return buf;
}

// `vm memory`: KSM's host counters and, per running VM, what it holds.
void add_vm_memory(CLI::App& vm, Globals& g) {
  auto format = std::make_shared<std::string>("table");
  auto* cmd = vm.add_subcommand("memory",
                                "host-wide memory report: KSM pages shared and saved, each VM's RSS, mergeable "
                                "RAM and pages merged");
  cmd->add_option("--format,-f", *format, "table or json")->check(CLI::IsMember({"table", "json"}));
  cmd->callback([format, &g] {
    nlohmann::json out;
    auto ksm = vmm::read_ksm_stats();
    if (ksm) {
      out["ksm"] = {{"run", ksm->run},
                    {"pages_shared", ksm->pages_shared},
                    {"pages_sharing", ksm->pages_sharing},
                    {"pages_unshared", ksm->pages_unshared},
                    {"full_scans", ksm->full_scans},
                    {"saved_bytes", ksm->pages_sharing * 4096}};
    } else {
      out["ksm"] = nullptr;
      out["ksm_error"] = ksm.error().message();
    }
    nlohmann::json vms = nlohmann::json::array();
    auto ids = vmm::list_vm_ids(g.root);
    if (!ids) return report(std::move(ids).error());
    for (const auto& id : *ids) {
      auto h = vmm::find_vm(g.root, id);
      if (!h || !h->alive) continue;
      auto st = vmm::vm_state(*h, true);
      if (!st) continue;  // stopped meanwhile
      nlohmann::json v{{"id", id},
                       {"status", st->value("status", "")},
                       {"memory_mib", st->value("memory_mib", 0)},
                       {"mergeable", st->value("mergeable", false)}};
      if (st->contains("stats")) {
        const auto& s = (*st)["stats"];
        if (s.contains("vmm_rss_kib")) v["rss_kib"] = s["vmm_rss_kib"];
        if (s.contains("ksm_merging_pages")) v["ksm_merging_pages"] = s["ksm_merging_pages"];
      }
      vms.push_back(v);
    }
    out["vms"] = vms;
    if (*format == "json") {
      std::printf("%s\n", out.dump().c_str());
      return;
    }
    if (ksm) {
      std::printf("KSM: %s; pages shared %llu, sharing %llu (%s saved), unshared %llu, full scans %llu\n",
                  ksm->run == 1 ? "running" : ksm->run == 2 ? "unmerging" : "stopped (echo 1 > /sys/kernel/mm/ksm/run)",
                  static_cast<unsigned long long>(ksm->pages_shared), static_cast<unsigned long long>(ksm->pages_sharing),
                  mib(ksm->pages_sharing * 4096).c_str(), static_cast<unsigned long long>(ksm->pages_unshared),
                  static_cast<unsigned long long>(ksm->full_scans));
    } else {
      std::printf("KSM: unavailable (%s)\n", out["ksm_error"].get<std::string>().c_str());
    }
    std::printf("%-20s %-8s %-8s %-9s %-9s %s\n", "ID", "STATUS", "MEMORY", "MERGEABLE", "RSS", "KSM-MERGED");
    for (const auto& v : vms) {
      std::string rss = v.contains("rss_kib") ? mib(v["rss_kib"].get<uint64_t>() * 1024) : "-";
      std::string merged = v.contains("ksm_merging_pages") ? mib(v["ksm_merging_pages"].get<uint64_t>() * 4096) : "-";
      std::printf("%-20s %-8s %-8s %-9s %-9s %s\n", v["id"].get<std::string>().c_str(),
                  v["status"].get<std::string>().c_str(), (std::to_string(v["memory_mib"].get<uint64_t>()) + "M").c_str(),
                  v["mergeable"].get<bool>() ? "on" : "off", rss.c_str(), merged.c_str());
    }
  });
}
}  // namespace

void add_vm_balloon(CLI::App& vm, Globals& g) {
  add_vm_memory(vm, g);
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
