// `vessel vm upgrade ID` (the same, locally, to a new VMM process that keeps
// the id), `vessel vm receive --listen tcp:ADDR:PORT|unix:PATH [--name ID] -d [--serial ...]`
// and `vessel vm migrate ID --to tcp:...|unix:... [--local] [--max-downtime MS]
// [--bandwidth B/s] [--max-rounds N] [--postcopy [--postcopy-bandwidth B/s]] [--copy-disks]`: clients of PUT /vm.receive-migration (through the
// launcher) and PUT /vm.send-migration + GET /vm.migration. Parsing and
// printing only; the engine is vmm/migration.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/vm.h"
#include "common/fs.h"
#include "common/strings.h"
#include "vmm/api/client.h"
#include "vmm/instance/launch.h"
#include "vmm/migration/transport.h"

namespace vessel::cli {
namespace {

using nlohmann::json;

struct MigrateFlags {
  std::string id, to;
  uint64_t max_downtime_ms = 300;
  uint64_t bandwidth = 0;
  unsigned max_rounds = 30;
  bool local = false;
  bool no_auto_converge = false;
  bool postcopy = false;
  uint64_t postcopy_bandwidth = 0;
  bool copy_disks = false;
};

std::string progress_line(const json& m) {
  auto pages_mib = [](uint64_t p) { return static_cast<double>(p) * 4096 / (1 << 20); };
  std::string extra;
  if (unsigned t = m.value("throttle_pct", 0u)) extra += cat(", throttled ", t, "%");
  if (m.value("postcopy", false))
    extra += cat(", post-copy of ", m.value("postcopy_pages", uint64_t{0}), " pages (",
                 m.value("postcopy_requests", uint64_t{0}), " asked for)");
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "%s: round %u, %.1f MiB sent (%llu zero pages), dirty %.1f MiB/s, link %.1f MiB/s, expected downtime "
                "%.1f ms%s",
                m.value("phase", "").c_str(), m.value("round", 0u), pages_mib(m.value("pages_sent", uint64_t{0})),
                static_cast<unsigned long long>(m.value("zero_pages", uint64_t{0})),
                static_cast<double>(m.value("dirty_rate_bps", uint64_t{0})) / (1 << 20),
                static_cast<double>(m.value("bandwidth_bps", uint64_t{0})) / (1 << 20),
                m.value("expected_downtime_ms", 0.0),
                extra.c_str());
  return buf;
}

// Sends VM f.id to f.to and follows it until its VMM has exited "migrated";
// returns the VMM's account of it (downtime, total time, rounds).
Result<std::string> run_migration(const Globals& g, const MigrateFlags& f) {
  auto h = TRY(vmm::find_vm(g.root, f.id));
  if (!h.alive) return Error::invalid(cat("VM '", f.id, "' is stopped"));
  TRY(vmm::migration::parse_endpoint(f.to, "--to"));
  json body = {{"destination_url", f.to},
               {"local", f.local},
               {"max_downtime_ms", f.max_downtime_ms},
               {"bandwidth", f.bandwidth},
               {"max_rounds", f.max_rounds},
               {"auto_converge", !f.no_auto_converge},
               {"postcopy", f.postcopy},
               {"postcopy_bandwidth", f.postcopy_bandwidth},
               {"copy_disks", f.copy_disks}};
  const std::string& sock = h.record.api_sock;
  TRY(vmm::api::call_ok(sock, "PUT", "/vm.send-migration", body.dump(), 15000));
  bool tty = ::isatty(STDERR_FILENO);
  std::string last;
  int failures = 0;
  for (;;) {
    auto r = vmm::api::call(sock, "GET", "/vm.migration", "", 5000);
    if (!r || r->status >= 300) {
      // The VMM exited, or it is ending (it wrote its exit record, then tears
      // the VM down), or it was too busy to answer: then ask again, a while.
      if (!vmm::vmm_alive(h.record) || vmm::read_exit(h.paths) || ++failures >= 12) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    failures = 0;
    auto m = json::parse(r->body, nullptr, false);
    if (!m.is_object()) break;
    std::string phase = m.value("phase", "");
    if (phase == "failed") {
      if (tty && !last.empty()) std::fputc('\n', stderr);
      if (m.value("source_lost", false))
        return Error::invalid(cat("migration to ", f.to, " failed (the VM was stopped here): ", m.value("error", "")));
      return Error::invalid(cat("migration to ", f.to, " failed (the VM runs on here): ", m.value("error", "")));
    }
    std::string line = progress_line(m);
    if (line != last) {
      std::fprintf(stderr, tty ? "\r\033[K%s" : "%s\n", line.c_str());
      last = line;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (tty && !last.empty()) std::fputc('\n', stderr);
  // The VMM writes its exit record ("migrated" once the destination runs the
  // guest) before it tears the VM down, which can take seconds on a loaded or
  // nested host (freeing the guest's RAM: vm kill waits 60 s for it too).
  bool exited = vmm::wait_vmm_exit(h, 60000);
  if (auto e = vmm::read_exit(h.paths); e && e->reason == "migrated") return e->detail;
  if (!exited) h.alive = vmm::vmm_alive(h.record);
  auto st = TRY(vmm::vm_state(h, false));
  if (st.value("exit_reason", "") != "migrated")
    return Error::invalid(cat("VM '", f.id, "' stopped during the migration (", st.value("exit_reason", "unknown"), ": ",
                              st.value("exit_detail", ""), ")"));
  return st.value("exit_detail", "");
}

Status migrate_vm(const Globals& g, const MigrateFlags& f) {
  std::string detail = TRY(run_migration(g, f));
  std::printf("migrated %s %s\n", f.id.c_str(), detail.c_str());
  return ok();
}

// Stops and removes the VMM that `vm upgrade` started when the hand-over failed.
void discard_new_vmm(const Globals& g, const std::string& state_id) {
  auto h = vmm::find_vm(g.root, state_id);
  if (!h) {
    (void)remove_tree(vmm::vm_paths(g.root, state_id).dir);
    return;
  }
  if (h->alive) {
    ::kill(h->record.pid, SIGKILL);
    (void)vmm::wait_vmm_exit(*h, 5000);
  }
  (void)remove_tree(h->paths.dir);
}

// `vm upgrade ID`: a new VMM process (this vessel binary) takes VM ID over on
// this host. It starts in <root>/vm/ID.upgrade, waiting on a unix socket
// there; the old VMM passes the guest RAM's memfd and the vCPU/device state
// (a local migration), then exits; the new VMM's directory becomes ID.
Status upgrade_vm(const Globals& g, const std::string& id, uint64_t max_downtime_ms) {
  auto h = TRY(vmm::find_vm(g.root, id));
  if (!h.alive) return Error::invalid(cat("VM '", id, "' is stopped"));
  std::string state_id = id.substr(0, 56) + ".upgrade";
  vmm::VmPaths tmp = vmm::vm_paths(g.root, state_id);
  std::string url = "unix:" + tmp.dir + "/upgrade.sock";
  vmm::VmmOptions o;
  o.id = id;
  o.state_id = state_id;
  o.root = g.root;
  o.serial = "log";
  o.version = VESSEL_VERSION;
  o.receive_url = url;
  TRYC(vmm::launch_detached(std::move(o)), "start the new VMM");
  MigrateFlags f;
  f.id = id;
  f.to = url;
  f.local = true;
  f.max_downtime_ms = max_downtime_ms;
  auto detail = run_migration(g, f);
  if (!detail) {
    discard_new_vmm(g, state_id);
    return std::move(detail).error();
  }
  // The guest runs in the new VMM. The old one wrote "migrated" and should
  // be gone; one still tearing down after a minute is stuck: nothing of the
  // guest is left in it, and its directory is about to be removed.
  if (vmm::vmm_alive(h.record)) {
    ::kill(h.record.pid, SIGKILL);
    (void)vmm::wait_vmm_exit(h, 60000);
  }
  // Its directory gives way to the new one's.
  std::string old_dir = h.paths.dir, gone = h.paths.dir + ".replaced";
  if (::rename(old_dir.c_str(), gone.c_str()) < 0) return Error::from_errno(cat("rename ", old_dir));
  if (::rename(tmp.dir.c_str(), old_dir.c_str()) < 0) {
    auto e = Error::from_errno(cat("rename ", tmp.dir, " to ", old_dir));
    (void)::rename(gone.c_str(), old_dir.c_str());
    return e;
  }
  vmm::VmPaths now = vmm::vm_paths(g.root, id);
  // The guest's console before the upgrade stays readable next to the new log.
  (void)::rename((gone + "/serial.log").c_str(), (now.dir + "/serial.log.1").c_str());
  (void)remove_tree(gone);
  auto rec = TRYC(vmm::read_record(now), "the new VMM's record");
  if (rec.api_sock == tmp.default_api_sock()) rec.api_sock = now.default_api_sock();
  TRYC(vmm::write_record(now, rec), "update the VM record");
  std::printf("upgraded %s: VMM pid %d, %s\n", id.c_str(), static_cast<int>(rec.pid), detail->c_str());
  return ok();
}

}  // namespace

void add_vm_migrate(CLI::App& vm, Globals& g) {
  {
    struct A {
      std::string listen, name, serial;
      std::vector<std::string> nets;
      std::string vsock, disk_dir;
      bool detach = false;
    };
    auto a = std::make_shared<A>();
    auto* cmd = vm.add_subcommand("receive", "start a VMM that waits for a VM migrated to it (vm migrate) and runs it");
    cmd->add_option("--listen", a->listen, "where to wait: tcp:ADDR:PORT or unix:PATH")->required();
    cmd->add_option("--name", a->name, "id of the received VM (default: generated, printed)");
    cmd->add_flag("-d,--detach", a->detach, "run the VMM detached");
    cmd->add_option("--serial", a->serial, "COM1 of the received VM: log (default), none or file:PATH");
    cmd->add_option("--net", a->nets,
                    "tap=NAME[,id=IFACE]: a NIC of the received VM on this host's tap NAME (repeatable; without id=, "
                    "the VM's NICs in order; default: the source's tap names)");
    cmd->add_option("--vsock", a->vsock,
                    "uds=PATH: the received VM's vsock listens on PATH here (default: the source's path, which a VMM "
                    "on the same host still holds)");
    cmd->add_option("--disk-dir", a->disk_dir,
                    "where the image files of a migration with --copy-disks are created, under their source names "
                    "(an existing directory; without it such a migration is refused)");
    cmd->callback([a, &g] {
      if (!a->detach) return report(Error::invalid("vm receive runs detached: add -d (vm console attaches to COM1)"));
      auto ep = vmm::migration::parse_endpoint(a->listen, "--listen");
      if (!ep) return report(ep.error());
      std::string id = a->name.empty() ? generated_vm_id() : a->name;
      vmm::VmmOptions o;
      o.id = id;
      o.root = g.root;
      o.serial = a->serial.empty() ? "log" : a->serial;
      o.version = VESSEL_VERSION;
      o.receive_url = a->listen;
      for (const auto& spec : a->nets) {
        vmm::SnapshotLoad::NetOverride n;
        for (const auto& kv : split(spec, ',')) {
          auto eq = kv.find('=');
          std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
          if (k == "tap") n.host_dev_name = v;
          else if (k == "id") n.iface_id = v;
          else return report(Error::invalid(cat("--net ", spec, ": unknown key '", k, "' (tap=NAME[,id=IFACE])")));
        }
        if (n.host_dev_name.empty() || n.host_dev_name.size() >= 16)
          return report(Error::invalid(cat("--net ", spec, ": tap= must name a tap of 1 to 15 bytes")));
        o.receive_nets.push_back(std::move(n));
      }
      if (!a->vsock.empty()) {
        if (a->vsock.rfind("uds=", 0) != 0 || a->vsock.size() == 4)
          return report(Error::invalid(cat("--vsock ", a->vsock, ": expected uds=PATH")));
        o.receive_vsock_uds = absolute_path(a->vsock.substr(4));
      }
      if (!a->disk_dir.empty()) {
        struct stat st {};
        if (::stat(a->disk_dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
          return report(Error::invalid(cat("--disk-dir ", a->disk_dir, ": not a directory")));
        o.receive_disk_dir = absolute_path(a->disk_dir);
      }
      auto s = vmm::launch_detached(std::move(o));
      if (!s) return report(std::move(s).error().context(cat("receive ", id)));
      if (a->name.empty()) std::printf("%s\n", id.c_str());
    });
  }
  {
    auto f = std::make_shared<MigrateFlags>();
    auto* cmd = vm.add_subcommand("migrate", "move a running VM to a VMM waiting in `vm receive` (live, pre-copy)");
    cmd->add_option("id", f->id, "VM id")->required();
    cmd->add_option("--to", f->to, "the receiver: tcp:ADDR:PORT or unix:PATH")->required();
    cmd->add_option("--max-downtime", f->max_downtime_ms, "downtime budget of the final paused copy, ms (default 300)");
    cmd->add_option("--bandwidth", f->bandwidth, "cap on the stream, bytes/s (default: none)");
    cmd->add_option("--max-rounds", f->max_rounds, "pre-copy rounds before the final copy (default 30)")
        ->check(CLI::Range(1u, 1000u));
    cmd->add_flag("--local", f->local,
                  "same host, unix socket: hand the guest RAM memfd over instead of copying it (near-zero downtime)");
    cmd->add_flag("--no-auto-converge", f->no_auto_converge, "do not throttle a guest that dirties memory faster than the link");
    cmd->add_flag("--postcopy", f->postcopy,
                  "where pre-copy does not converge, run the guest on the destination at once and send the pages it "
                  "lacks after it, those it touches first (instead of throttling it); a failure after that loses the "
                  "guest")
        ->excludes("--local");
    cmd->add_option("--postcopy-bandwidth", f->postcopy_bandwidth,
                    "cap on the pages post-copy sends unasked, bytes/s (default: none; asked-for pages go at once)");
    cmd->add_flag("--copy-disks", f->copy_disks,
                  "send the writable disks' image files along (hosts without shared storage; the receiver needs "
                  "--disk-dir; a qcow2 overlay's backing file must be reachable there under the path its header names)")
        ->excludes("--local");
    cmd->callback([f, &g] { finish(migrate_vm(g, *f).context(cat("migrate ", f->id))); });
  }
  {
    auto f = std::make_shared<MigrateFlags>();
    auto* cmd = vm.add_subcommand(
        "upgrade", "move a running VM to a new VMM process of this vessel binary on this host, keeping its id "
                   "(the guest RAM memfd is handed over, not copied)");
    cmd->add_option("id", f->id, "VM id")->required();
    cmd->add_option("--max-downtime", f->max_downtime_ms, "downtime budget, ms (default 300)");
    cmd->callback([f, &g] { finish(upgrade_vm(g, f->id, f->max_downtime_ms).context(cat("upgrade ", f->id))); });
  }
}

}  // namespace vessel::cli
