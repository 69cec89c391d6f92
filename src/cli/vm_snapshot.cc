// `vessel vm snapshot ID DIR [--diff]`, `vm restore DIR [--name NEW] [-d]
// [--serial ...] [--paused]`, `vm clone DIR --count N` and `vm
// snapshot-merge DIFF BASE`: clients of the VMM's snapshot endpoints and of
// the snapshot engine. A snapshot directory holds `state` and `memory`.
// Parsing and printing only.
#include <sys/random.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/vm.h"
#include "common/fs.h"
#include "common/strings.h"
#include "vmm/api/client.h"
#include "vmm/instance/launch.h"
#include "vmm/snapshot/snapshot.h"

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
  unsigned count = 1;
};

// Restores `f.dir` as VM `id` in a detached VMM.
Status restore_detached(const Globals& g, const RestoreFlags& f, const std::string& id) {
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
    auto* cmd = vm.add_subcommand("clone", "start N VMs from one snapshot (detached; each its own copy-on-write memory)");
    cmd->add_option("dir", f->dir, "snapshot directory")->required();
    cmd->add_option("--count", f->count, "number of clones")->required()->check(CLI::Range(1u, 1000u));
    cmd->add_option("--name", f->name, "id prefix: clones are PREFIX-0 .. PREFIX-N-1 (default: generated)");
    cmd->add_option("--serial", f->serial, "COM1 of each clone: log (default) or none");
    cmd->add_flag("--paused", f->paused, "leave the clones paused");
    cmd->callback([f, &g] {
      std::string prefix = f->name.empty() ? generated_id("clone") : f->name;
      for (unsigned i = 0; i < f->count; ++i) {
        std::string id = cat(prefix, "-", i);
        auto s = restore_detached(g, *f, id);
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
