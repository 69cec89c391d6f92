// The lifecycle verbs of detached VMs: clients of the VMM's API socket
// (vmm/api/client.h) and readers of its state directory. Parsing and printing only.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/vm.h"
#include "common/strings.h"
#include "vmm/api/client.h"
#include "vmm/instance/launch.h"

namespace vessel::cli {
namespace {

using nlohmann::json;

// Sends one request to VM `id`'s API; the VMM must run.
Status api_request(const Globals& g, const std::string& id, const char* method, const char* path, const json& body,
                   int timeout_ms = 10000) {
  auto h = TRY(vmm::find_vm(g.root, id));
  if (!h.alive) return Error::invalid(cat("VM '", id, "' is stopped"));
  TRY(vmm::api::call_ok(h.record.api_sock, method, path, body.is_null() ? "" : body.dump(), timeout_ms));
  return ok();
}

std::string when(int64_t t) {
  if (t <= 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));
  return buf;
}

// Sends `sig` to the VMM of `h` if it is still the same process.
Status signal_vmm(const vmm::VmHandle& h, int sig) {
  if (!vmm::vmm_alive(h.record)) return ok();
  if (::kill(h.record.pid, sig) < 0 && errno != ESRCH) return Error::from_errno(cat("kill ", h.record.pid));
  return ok();
}

// Stops the VMM at once: `sig` (TERM: the VMM stops the VM and records it), KILL if it outlives 10 s.
// A killed VMM is waited for up to 60 s: the kernel frees its guest RAM as it exits, which for
// GiBs on a loaded (or nested) host takes seconds; it cannot refuse to go.
Status kill_vm(const vmm::VmHandle& h, int sig) {
  TRY(signal_vmm(h, sig));
  if (vmm::wait_vmm_exit(h, sig == SIGKILL ? 60000 : 10000)) return ok();
  if (sig != SIGKILL) {
    TRY(signal_vmm(h, SIGKILL));
    if (vmm::wait_vmm_exit(h, 60000)) return ok();
  }
  return Error(ETIMEDOUT, cat("the VMM (pid ", h.record.pid, ") did not exit"));
}

Result<int> parse_signal(const std::string& s) {
  static const std::pair<const char*, int> kSignals[] = {{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT},
                                                         {"HUP", SIGHUP},   {"QUIT", SIGQUIT}};
  std::string name = starts_with(s, "SIG") ? s.substr(3) : s;
  for (auto& [n, v] : kSignals)
    if (name == n) return v;
  if (auto n = parse_u64(s); n && *n > 0 && *n < 65) return static_cast<int>(*n);
  return Error::invalid(cat("unknown signal '", s, "' (TERM, KILL, INT, HUP, QUIT or a number)"));
}

struct Args {
  std::string id;
  std::string format = "table";
  std::string signal = "TERM";
  bool stats = false;
  bool force = false;
  unsigned timeout = 30;
};

void add_simple(CLI::App& vm, Globals& g, const char* name, const char* help, const char* method, const char* path,
                json body) {
  auto a = std::make_shared<Args>();
  auto* cmd = vm.add_subcommand(name, help);
  cmd->add_option("id", a->id, "VM id")->required();
  cmd->callback([a, &g, name, method, path, body] { finish(api_request(g, a->id, method, path, body).context(cat(name, " ", a->id))); });
}

}  // namespace

void add_vm_lifecycle(CLI::App& vm, Globals& g) {
  add_simple(vm, g, "start", "boot a VM made by vm create (PUT /actions InstanceStart)", "PUT", "/actions",
             {{"action_type", "InstanceStart"}});
  add_simple(vm, g, "pause", "pause a VM: its vCPUs and devices stop until vm resume (PATCH /vm)", "PATCH", "/vm",
             {{"state", "Paused"}});
  add_simple(vm, g, "resume", "resume a paused VM (PATCH /vm)", "PATCH", "/vm", {{"state", "Resumed"}});

  {
    auto a = std::make_shared<Args>();
    auto* cmd = vm.add_subcommand("list", "list the VMs under --root");
    cmd->add_option("--format,-f", a->format, "table or json")->check(CLI::IsMember({"table", "json"}));
    cmd->callback([a, &g] {
      auto ids = vmm::list_vm_ids(g.root);
      if (!ids) return report(std::move(ids).error());
      json all = json::array();
      for (const auto& id : *ids) {
        auto h = vmm::find_vm(g.root, id);
        if (!h) continue;  // being created or deleted
        auto st = vmm::vm_state(*h, false);
        if (!st) {
          all.push_back({{"id", id}, {"pid", h->record.pid}, {"status", "unknown"}, {"error", st.error().message()}});
          continue;
        }
        all.push_back(*st);
      }
      if (a->format == "json") {
        std::printf("%s\n", all.dump().c_str());
        return;
      }
      std::printf("%-20s %-8s %-8s %-6s %-8s %s\n", "ID", "PID", "STATUS", "VCPUS", "MEMORY", "CREATED");
      for (const auto& v : all) {
        auto num = [&](const char* k) { return v.contains(k) && v[k].is_number() ? std::to_string(v[k].get<int64_t>()) : "-"; };
        std::string mem = v.contains("memory_mib") ? num("memory_mib") + "M" : "-";
        std::printf("%-20s %-8s %-8s %-6s %-8s %s\n", v.value("id", "").c_str(),
                    v.value("status", "") == "stopped" ? "0" : num("pid").c_str(), v.value("status", "").c_str(),
                    num("vcpus").c_str(), mem.c_str(), when(v.value("created", int64_t{0})).c_str());
      }
    });
  }

  {
    auto a = std::make_shared<Args>();
    auto* cmd = vm.add_subcommand("state", "print a VM's state as JSON (id, pid, status, vcpus, memory, devices, boot time)");
    cmd->add_option("id", a->id, "VM id")->required();
    cmd->add_flag("--stats", a->stats, "add the VMM's counters (RSS, serial bytes, ...)");
    cmd->callback([a, &g] {
      auto h = vmm::find_vm(g.root, a->id);
      if (!h) return report(std::move(h).error().context(cat("state ", a->id)));
      auto st = vmm::vm_state(*h, a->stats);
      if (!st) return report(std::move(st).error().context(cat("state ", a->id)));
      std::printf("%s\n", st->dump(2).c_str());
    });
  }

  {
    auto a = std::make_shared<Args>();
    auto* cmd = vm.add_subcommand("stop",
                                  "shut a VM down cleanly: Ctrl-Alt-Del to the guest (PUT /actions SendCtrlAltDel), "
                                  "then wait for the VMM to exit");
    cmd->add_option("id", a->id, "VM id")->required();
    cmd->add_option("--timeout,-t", a->timeout, "seconds to wait for the guest to stop")->capture_default_str();
    cmd->callback([a, &g] {
      finish([&]() -> Status {
        auto h = TRY(vmm::find_vm(g.root, a->id));
        if (!h.alive) return ok();
        TRY(vmm::api::call_ok(h.record.api_sock, "PUT", "/actions", R"({"action_type":"SendCtrlAltDel"})"));
        if (!vmm::wait_vmm_exit(h, static_cast<int>(a->timeout) * 1000))
          return Error(ETIMEDOUT, cat("the guest did not stop within ", a->timeout, " s (vm kill stops it at once)"));
        // Powered off, or rebooted (a guest whose init does not handle
        // Ctrl-Alt-Del): both end the VM; a fatal exit is an error.
        if (auto e = vmm::read_exit(h.paths); e && e->reason == "error")
          return Error::invalid(cat("the VM stopped with an error: ", e->detail));
        return ok();
      }().context(cat("stop ", a->id)));
    });
  }

  {
    auto a = std::make_shared<Args>();
    auto* cmd = vm.add_subcommand("kill", "stop a VM at once (the guest is not asked): signal its VMM");
    cmd->add_option("id", a->id, "VM id")->required();
    cmd->add_option("signal", a->signal, "TERM (default: the VMM stops the VM and exits) or KILL");
    cmd->callback([a, &g] {
      finish([&]() -> Status {
        int sig = TRY(parse_signal(a->signal));
        auto h = TRY(vmm::find_vm(g.root, a->id));
        if (!h.alive) return Error::invalid(cat("VM '", a->id, "' is not running"));
        return kill_vm(h, sig);
      }().context(cat("kill ", a->id)));
    });
  }

  {
    auto a = std::make_shared<Args>();
    auto* cmd = vm.add_subcommand("delete", "remove a stopped VM's state (--force: kill it first)");
    cmd->add_option("id", a->id, "VM id")->required();
    cmd->add_flag("--force,-f", a->force, "kill a running VM first");
    cmd->callback([a, &g] {
      finish([&]() -> Status {
        auto h = TRY(vmm::find_vm(g.root, a->id));
        if (h.alive) {
          if (!a->force) return Error(EBUSY, cat("VM '", a->id, "' is running (vm stop / vm kill it, or delete --force)"));
          TRY(kill_vm(h, SIGKILL));
        }
        return vmm::remove_vm(h);
      }().context(cat("delete ", a->id)));
    });
  }
}

}  // namespace vessel::cli
