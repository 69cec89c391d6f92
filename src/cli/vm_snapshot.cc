// `vessel vm snapshot ID DIR [--diff]`, `vm restore DIR [--name NEW] [-d]
// [--serial ...] [--paused] [--net ...]`, `vm clone DIR --count N [--net
// tap=NAME{i}]` and `vm snapshot-merge DIFF BASE`: clients of the VMM's
// snapshot endpoints and of the snapshot engine. A snapshot directory holds
// `state` and `memory`. Parsing and printing only.
#include <sys/random.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/vm.h"
#include "common/fs.h"
#include "common/strings.h"
#include "vmm/api/client.h"
#include "vmm/config/vm_config.h"
#include "vmm/device_options.h"
#include "vmm/instance/launch.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/snapshot/state_file.h"

namespace vessel::cli {
namespace {

using nlohmann::json;

std::string state_file(const std::string& dir) { return path_join(absolute_path(dir), "state"); }
std::string memory_file(const std::string& dir) { return path_join(absolute_path(dir), "memory"); }

// Snapshots VM `id` into `dir`: a running VM is paused for it and resumed after.
Status snapshot_vm(const Globals& g, const std::string& id, const std::string& dir, bool diff) {
  auto h = TRY(vmm::find_vm(g.root, id));
  if (!h.alive) return Error::invalid(cat("VM '", id, "' is stopped"));
  const std::string& sock = h.record.api_sock;
  auto info = TRY(vmm::api::call_ok(sock, "GET", "/"));
  auto j = json::parse(info.body, nullptr, false);
  bool was_running = j.is_object() && j.value("state", "") == "Running";
  TRYC(mkdir_p(dir, 0700), cat("create ", dir));
  if (was_running) TRYC(vmm::api::call_ok(sock, "PATCH", "/vm", json{{"state", "Paused"}}.dump()), "pause");
  json body = {{"snapshot_type", diff ? "Diff" : "Full"},
               {"snapshot_path", state_file(dir)},
               {"mem_file_path", memory_file(dir)}};
  auto r = vmm::api::call_ok(sock, "PUT", "/snapshot/create", body.dump(), 120000);
  if (was_running) {
    auto res = vmm::api::call_ok(sock, "PATCH", "/vm", json{{"state", "Resumed"}}.dump());
    if (r && !res) return std::move(res).error().context("resume");
  }
  if (!r) return std::move(r).error();
  return ok();
}

std::string generated_id(const char* prefix) {
  uint32_t v = 0;
  if (::getrandom(&v, sizeof v, 0) != sizeof v) v = static_cast<uint32_t>(::getpid());
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s-%08x", prefix, v);
  return buf;
}

struct RestoreFlags {
  std::string dir;
  std::string name;
  std::string serial;
  bool detach = false;
  bool paused = false;
  bool prefault = false;
  bool diff = false;
  bool clone = false;
  unsigned count = 1;
  std::vector<std::string> nets;  // --net tap=NAME[,mac=MAC][,id=IFACE], in the snapshot's NIC order
};

// The --net flags as the VMM's network overrides for clone `index` (tap
// names may hold "{i}": the clone's index). Flags without id= name the
// snapshot's interfaces in order.
Result<std::vector<vmm::SnapshotLoad::NetOverride>> net_overrides(const RestoreFlags& f, unsigned index) {
  std::vector<vmm::SnapshotLoad::NetOverride> out;
  if (f.nets.empty()) return out;
  auto st = TRY(vmm::snapshot::read_state_file(state_file(f.dir)));
  vmm::VmConfig c;
  if (!st.vm_config.empty()) c = TRYC(vmm::parse_vm_config_text(st.vm_config), "the snapshot's VM config");
  for (size_t k = 0; k < f.nets.size(); ++k) {
    vmm::SnapshotLoad::NetOverride o;
    for (const auto& kv : split(f.nets[k], ',')) {
      auto eq = kv.find('=');
      std::string key = kv.substr(0, eq), val = eq == std::string::npos ? "" : kv.substr(eq + 1);
      if (key == "tap") o.host_dev_name = val;
      else if (key == "mac") o.guest_mac = val;
      else if (key == "id") o.iface_id = val;
      else return Error::invalid(cat("--net ", f.nets[k], ": unknown key '", key, "' (tap=, mac=, id=)"));
    }
    if (o.iface_id.empty()) {
      if (k >= c.nets.size())
        return Error::invalid(cat("--net ", f.nets[k], ": the snapshot has ", c.nets.size(), " network interfaces"));
      o.iface_id = c.nets[k].iface_id;
    }
    if (!o.guest_mac.empty()) {
      if (f.count > 1) return Error::invalid(cat("--net ", f.nets[k], ": mac= is for one VM; clones get MACs derived from their ids"));
      TRYC(vmm::parse_mac(o.guest_mac), cat("--net ", f.nets[k]));
    }
    if (auto at = o.host_dev_name.find("{i}"); at != std::string::npos) o.host_dev_name.replace(at, 3, std::to_string(index));
    else if (f.count > 1 && !o.host_dev_name.empty())
      return Error::invalid(cat("--net ", f.nets[k], ": each clone needs its own tap: put {i} (the clone's index) in the name"));
    if (o.host_dev_name.size() > 15) return Error::invalid(cat("--net ", f.nets[k], ": tap name '", o.host_dev_name, "' is longer than 15 bytes"));
    out.push_back(std::move(o));
  }
  return out;
}

// Restores `f.dir` as VM `id` (clone `index`) in a detached VMM.
Status restore_detached(const Globals& g, const RestoreFlags& f, const std::string& id, unsigned index = 0) {
  vmm::VmmOptions o;
  o.id = id;
  o.root = g.root;
  o.serial = f.serial.empty() ? "log" : f.serial;
  o.version = VESSEL_VERSION;
  vmm::SnapshotLoad l;
  l.state_path = state_file(f.dir);
  l.memory_path = memory_file(f.dir);
  l.resume = !f.paused;
  l.prefault = f.prefault;
  l.track_dirty_pages = f.diff;
  l.clone = f.clone;
  l.network_overrides = TRY(net_overrides(f, index));
  o.restore = l;
  TRY(vmm::launch_detached(std::move(o)).context(cat("restore ", id)));
  return ok();
}

}  // namespace

void add_vm_snapshot(CLI::App& vm, Globals& g) {
  {
    struct A {
      std::string id, dir;
      bool diff = false;
    };
    auto a = std::make_shared<A>();
    auto* cmd = vm.add_subcommand("snapshot",
                                  "save a VM to DIR (state + memory files); a running VM is paused for it and resumed");
    cmd->add_option("id", a->id, "VM id")->required();
    cmd->add_option("dir", a->dir, "snapshot directory (created)")->required();
    cmd->add_flag("--diff", a->diff, "only the pages written since the VM's last snapshot (VM made with dirty tracking)");
    cmd->callback([a, &g] { finish(snapshot_vm(g, a->id, a->dir, a->diff).context(cat("snapshot ", a->id))); });
  }
  {
    auto f = std::make_shared<RestoreFlags>();
    auto* cmd = vm.add_subcommand("restore", "start a VM from a snapshot directory, running unless --paused");
    cmd->add_option("dir", f->dir, "snapshot directory")->required();
    cmd->add_option("--name", f->name, "id of the new VM (default: generated, printed)");
    cmd->add_flag("-d,--detach", f->detach, "run the VM in a detached VMM process");
    cmd->add_option("--serial", f->serial, "COM1 of the restored VM: log (default), none or file:PATH");
    cmd->add_flag("--paused", f->paused, "leave the VM paused (vm resume runs it)");
    cmd->add_flag("--prefault", f->prefault, "read all of the memory file in now instead of on first touch");
    cmd->add_flag("--track-dirty-pages", f->diff, "allow diff snapshots of the restored VM");
    cmd->add_option("--net", f->nets,
                    "tap=NAME[,mac=MAC][,id=IFACE]: an interface of the snapshot on another tap / with another MAC "
                    "(repeat, in the snapshot's interface order)");
    cmd->add_flag("--clone", f->clone,
                  "restore as a clone: disks get qcow2 overlays in the VM's state dir, interfaces need --net tap= "
                  "and get MACs derived from the VM id");
    cmd->callback([f, &g] {
      if (!f->detach) return report(Error::invalid("vm restore runs detached: add -d (vm console attaches to COM1)"));
      std::string id = f->name.empty() ? generated_id("vm") : f->name;
      auto s = restore_detached(g, *f, id);
      if (s && f->name.empty()) std::printf("%s\n", id.c_str());
      finish(std::move(s));
    });
  }
  {
    auto f = std::make_shared<RestoreFlags>();
    auto* cmd = vm.add_subcommand(
        "clone",
        "start N VMs from one snapshot (detached): each shares the memory file copy-on-write, writes its disks into "
        "its own qcow2 overlay, gets a new VM generation ID (the guest reseeds its RNG), its own tap and a MAC "
        "derived from its id");
    f->clone = true;
    cmd->add_option("dir", f->dir, "snapshot directory")->required();
    cmd->add_option("--count", f->count, "number of clones")->required()->check(CLI::Range(1u, 1000u));
    cmd->add_option("--name", f->name, "id prefix: clones are PREFIX-0 .. PREFIX-N-1 (default: generated)");
    cmd->add_option("--serial", f->serial, "COM1 of each clone: log (default) or none");
    cmd->add_flag("--paused", f->paused, "leave the clones paused");
    cmd->add_option("--net", f->nets,
                    "tap=NAME{i}[,id=IFACE]: each clone's tap ({i}: its index), one per interface of the snapshot; "
                    "mac= only with --count 1");
    cmd->callback([f, &g] {
      std::string prefix = f->name.empty() ? generated_id("clone") : f->name;
      for (unsigned i = 0; i < f->count; ++i) {
        std::string id = cat(prefix, "-", i);
        auto s = restore_detached(g, *f, id, i);
        if (!s) return report(std::move(s).error().context(cat("clone ", i, " of ", f->count)));
        std::printf("%s\n", id.c_str());
      }
    });
  }
  {
    struct A {
      std::string diff, base;
    };
    auto a = std::make_shared<A>();
    auto* cmd = vm.add_subcommand("snapshot-merge", "apply a diff snapshot directory onto the full one it was taken from");
    cmd->add_option("diff", a->diff, "diff snapshot directory")->required();
    cmd->add_option("base", a->base, "full snapshot directory (updated)")->required();
    cmd->callback([a] {
      vmm::snapshot::MergeOptions o;
      o.base_state = state_file(a->base);
      o.base_memory = memory_file(a->base);
      o.diff_state = state_file(a->diff);
      o.diff_memory = memory_file(a->diff);
      o.out_state = o.base_state;
      o.out_memory = o.base_memory;
      finish(vmm::snapshot::merge_snapshot(o).context("snapshot-merge"));
    });
  }
}

}  // namespace vessel::cli
