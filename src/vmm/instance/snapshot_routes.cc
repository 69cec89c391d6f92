// Snapshots through the API: Firecracker's PUT /snapshot/create and PUT
// /snapshot/load (same bodies), on the snapshot engine (vmm/snapshot).
// The VM's JSON config travels in the state file (CONF), so a restored VM
// has the drive and interface ids and settings of the one snapshotted.
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/fs.h"
#include "common/log.h"
#include "common/strings.h"
#include "vmm/config/json_reader.h"
#include "vmm/device_options.h"
#include "vmm/instance/vmm.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/snapshot/state_file.h"

namespace vessel::vmm {

using nlohmann::json;

snapshot::VmSpec spec_of(const VmConfig& c) {
  snapshot::VmSpec s;
  s.cpus = c.machine.vcpu_count;
  s.memory = c.machine.mem_size_mib << 20;
  for (const DriveConfig* d : c.drives_in_order()) {
    snapshot::DeviceSpec ds;
    ds.kind = snapshot::DeviceSpec::Kind::kBlock;
    ds.path = d->path_on_host;
    ds.block.readonly = d->is_read_only;
    ds.block.serial = d->serial.empty() ? d->drive_id.substr(0, 20) : d->serial;
    if (d->rate_limiter) {
      ds.block.bandwidth = d->rate_limiter->bytes_per_second();
      ds.block.iops = d->rate_limiter->ops_per_second();
    }
    s.devices.push_back(std::move(ds));
  }
  for (const auto& n : c.nets) {
    snapshot::DeviceSpec ds;
    ds.kind = snapshot::DeviceSpec::Kind::kNet;
    ds.net.tap = n.host_dev_name;
    if (!n.guest_mac.empty())
      if (auto mac = parse_mac(n.guest_mac)) {
        ds.net.mac = *mac;
        ds.net.mac_set = true;
      }
    auto lower = [](uint64_t a, uint64_t b) { return a == 0 ? b : b == 0 ? a : std::min(a, b); };
    auto bytes = [](const auto& l) { return l ? l->bytes_per_second() : 0; };
    auto ops = [](const auto& l) { return l ? l->ops_per_second() : 0; };
    ds.net.bandwidth = lower(bytes(n.rx_rate_limiter), bytes(n.tx_rate_limiter));
    ds.net.iops = lower(ops(n.rx_rate_limiter), ops(n.tx_rate_limiter));
    s.devices.push_back(std::move(ds));
  }
  if (c.entropy) {
    snapshot::DeviceSpec ds;
    ds.kind = snapshot::DeviceSpec::Kind::kRng;
    s.devices.push_back(ds);
  }
  if (c.balloon) {  // in vm_builder's order: after the RNG
    snapshot::DeviceSpec ds;
    ds.kind = snapshot::DeviceSpec::Kind::kBalloon;
    ds.balloon.target_pages = static_cast<uint32_t>((c.balloon->amount_mib << 20) / virtio::kBalloonPageSize);
    ds.balloon.deflate_on_oom = c.balloon->deflate_on_oom;
    ds.balloon.stats_interval_s = c.balloon->stats_polling_interval_s;
    ds.balloon.free_page_reporting = c.balloon->free_page_reporting;
    s.devices.push_back(ds);
  }
  if (c.vsock) {
    snapshot::DeviceSpec ds;
    ds.kind = snapshot::DeviceSpec::Kind::kVsock;
    ds.vsock.guest_cid = c.vsock->guest_cid;
    ds.vsock.uds_path = c.vsock->uds_path;
    s.devices.push_back(ds);
  }
  return s;
}

Result<SnapshotLoad> parse_snapshot_load(const json& body) {
  JsonReader r(body, "");
  TRY(r.check_object());
  SnapshotLoad l;
  l.state_path = TRY(r.req_str("snapshot_path"));
  if (const json* mb = r.find("mem_backend")) {
    JsonReader m(*mb, "mem_backend");
    TRY(m.check_object());
    std::string type = TRY(m.req_str("backend_type"));
    if (type != "File")
      return Error::invalid(cat("mem_backend.backend_type: '", type, "' is not supported (only File)"));
    l.memory_path = TRY(m.req_str("backend_path"));
    TRY(m.finish());
  }
  if (auto p = TRY(r.str("mem_file_path"))) {  // Firecracker's older field
    if (!l.memory_path.empty()) return Error::invalid("mem_file_path: give mem_backend or mem_file_path, not both");
    l.memory_path = *p;
  }
  if (auto d = TRY(r.boolean("enable_diff_snapshots"))) l.track_dirty_pages = *d;
  if (auto d = TRY(r.boolean("track_dirty_pages"))) l.track_dirty_pages = l.track_dirty_pages || *d;
  if (auto v = TRY(r.boolean("resume_vm"))) l.resume = *v;
  if (auto v = TRY(r.boolean("prefault"))) l.prefault = *v;  // vessel
  if (auto v = TRY(r.boolean("clone"))) l.clone = *v;        // vessel
  if (const json* no = r.find("network_overrides")) l.network_overrides = TRY(parse_net_overrides(*no, "network_overrides", true));
  TRY(r.finish());
  return l;
}

Result<std::vector<SnapshotLoad::NetOverride>> parse_net_overrides(const json& arr, const std::string& field,
                                                                   bool for_restore) {
  std::vector<SnapshotLoad::NetOverride> out;
  if (!arr.is_array()) return Error::invalid(cat(field, ": expected an array"));
  for (size_t i = 0; i < arr.size(); ++i) {
    JsonReader o(arr[i], cat(field, "[", i, "]"));
    TRY(o.check_object());
    SnapshotLoad::NetOverride n;
    n.iface_id = TRY(o.req_str("iface_id"));
    if (for_restore) {
      n.host_dev_name = TRY(o.str("host_dev_name")).value_or("");
      n.guest_mac = TRY(o.str("guest_mac")).value_or("");  // vessel
      if (!n.guest_mac.empty()) TRYC(parse_mac(n.guest_mac), o.name("guest_mac"));
    } else {
      n.host_dev_name = TRY(o.req_str("host_dev_name"));
      if (n.host_dev_name.empty()) return Error::invalid(cat(o.name("host_dev_name"), ": empty"));
    }
    if (n.host_dev_name.size() >= 16) return Error::invalid(cat(o.name("host_dev_name"), ": longer than 15 bytes"));
    for (const auto& prev : out)
      if (prev.iface_id == n.iface_id) return Error::invalid(cat(o.name("iface_id"), ": '", n.iface_id, "' is given twice"));
    TRY(o.finish());
    out.push_back(std::move(n));
  }
  return out;
}

namespace {
std::string mac_text(const virtio::MacAddress& m) {
  char b[18];
  std::snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return b;
}

// A clone's MAC: the snapshot's first three bytes (locally administered,
// unicast) and three from a hash of the VM id and the interface.
virtio::MacAddress derived_mac(const virtio::MacAddress& base, const std::string& vm_id, const std::string& iface) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (char c : vm_id + "/" + iface) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
  virtio::MacAddress m = base;
  if (m[0] == 0 && m[1] == 0 && m[2] == 0) m = {0x52, 0x54, 0x00, 0, 0, 0};
  m[0] = static_cast<uint8_t>((m[0] | 0x02) & ~0x01);
  m[3] = static_cast<uint8_t>(h >> 16);
  m[4] = static_cast<uint8_t>(h >> 8);
  m[5] = static_cast<uint8_t>(h);
  return m;
}

// The restore's taps, MACs and overlays, from the API's overrides.
Result<std::vector<snapshot::NetOverride>> net_overrides(const SnapshotLoad& l, const std::string& vm_id,
                                                         const std::string& state_path) {
  if (l.network_overrides.empty() && !l.clone) return std::vector<snapshot::NetOverride>{};
  auto st = TRY(snapshot::read_state_file(state_path));
  return resolve_net_overrides(st, l.network_overrides, l.clone, vm_id);
}
}  // namespace

Result<std::vector<snapshot::NetOverride>> resolve_net_overrides(const snapshot::SnapshotState& st,
                                                                 const std::vector<SnapshotLoad::NetOverride>& overrides,
                                                                 bool clone, const std::string& vm_id) {
  std::vector<snapshot::NetOverride> out;
  VmConfig c;
  if (!st.vm_config.empty()) c = TRYC(parse_vm_config_text(st.vm_config), "the snapshot's VM config");
  SnapshotLoad l;
  l.network_overrides = overrides;
  l.clone = clone;
  for (const auto& o : l.network_overrides) {
    bool found = false;
    for (size_t i = 0; i < c.nets.size(); ++i)
      if (c.nets[i].iface_id == o.iface_id) found = true;
    if (!found) return Error::invalid(cat("network_overrides: the snapshot has no interface '", o.iface_id, "'"));
  }
  std::vector<const snapshot::DeviceSpec*> nics;
  for (const auto& d : st.spec.devices)
    if (d.kind == snapshot::DeviceSpec::Kind::kNet) nics.push_back(&d);
  if (nics.size() != c.nets.size()) return Error::invalid("the snapshot's VM config does not list its NICs");
  for (size_t i = 0; i < c.nets.size(); ++i) {
    const SnapshotLoad::NetOverride* o = nullptr;
    for (const auto& x : l.network_overrides)
      if (x.iface_id == c.nets[i].iface_id) o = &x;
    snapshot::NetOverride n;
    n.nic = i;
    if (o) n.tap = o->host_dev_name;
    if (l.clone && n.tap.empty())
      return Error::invalid(cat("clone: interface '", c.nets[i].iface_id, "' needs a tap of its own (network_overrides host_dev_name)"));
    if (o && !o->guest_mac.empty()) n.mac = TRY(parse_mac(o->guest_mac));
    else if (l.clone) n.mac = derived_mac(nics[i]->net.mac, vm_id, c.nets[i].iface_id);
    if (!n.tap.empty() || n.mac) out.push_back(std::move(n));
  }
  return out;
}

Status Vmm::snapshot_create(const json& body) {
  JsonReader r(body, "");
  TRY(r.check_object());
  std::string type = TRY(r.str("snapshot_type")).value_or("Full");
  if (type != "Full" && type != "Diff") return Error::invalid(cat("snapshot_type: must be Full or Diff, not '", type, "'"));
  snapshot::CreateOptions o;
  o.state_path = TRY(r.req_str("snapshot_path"));
  o.memory_path = TRY(r.req_str("mem_file_path"));
  o.diff = type == "Diff";
  (void)TRY(r.str("version"));  // Firecracker's snapshot version: vessel writes its own format
  TRY(r.finish());
  if (status_ != VmStatus::kPaused)
    return Error::invalid(cat("snapshot/create: the VM must be paused first (it is ", status_name(status_), ")"));
  o.vm_config = to_json(opts_.config).dump();
  auto st = TRY(snapshot::create_snapshot(*vm_.machine, spec_of(opts_.config), o));
  log::info("vmm", cat("VM ", opts_.id, ": ", type, " snapshot in ", st.total_ms, " ms (", st.memory_written >> 10,
                       " KiB of memory written)"));
  return ok();
}

BuiltVm Vmm::adopt_machine(std::unique_ptr<Machine> m, const snapshot::SnapshotState& st, VmConfig& c) {
  {  // the devices as restored: a clone's overlays, taps and MACs
    size_t i = 0, n = 0;
    auto drives = c.drives_in_order();
    for (const auto& d : st.spec.devices) {
      if (d.kind == snapshot::DeviceSpec::Kind::kBlock && i < drives.size())
        const_cast<DriveConfig*>(drives[i++])->path_on_host = d.path;
      if (d.kind == snapshot::DeviceSpec::Kind::kNet && n < c.nets.size()) {
        c.nets[n].host_dev_name = d.net.tap;
        if (d.net.mac_set) c.nets[n].guest_mac = mac_text(d.net.mac);
        ++n;
      }
    }
  }
  BuiltVm vm;
  vm.machine = std::move(m);
  size_t i = 0;
  for (const DriveConfig* d : c.drives_in_order()) vm.devices.push_back({"block", d->drive_id, &vm.machine->virtio_transport(i++)});
  for (const auto& n : c.nets) vm.devices.push_back({"net", n.iface_id, &vm.machine->virtio_transport(i++)});
  if (c.entropy) vm.devices.push_back({"rng", "entropy", &vm.machine->virtio_transport(i++)});
  if (c.balloon && i < vm.machine->virtio_count()) {
    auto* t = &vm.machine->virtio_transport(i++);
    vm.balloon = dynamic_cast<virtio::BalloonDevice*>(&t->device());
    vm.devices.push_back({"balloon", "balloon", t});
  }
  if (c.vsock && i < vm.machine->virtio_count()) {
    auto* t = &vm.machine->virtio_transport(i++);
    vm.vsock = dynamic_cast<virtio::VsockDevice*>(&t->device());
    vm.devices.push_back({"vsock", "vsock", t});
    for (const auto& d : st.spec.devices)
      if (d.kind == snapshot::DeviceSpec::Kind::kVsock) c.vsock->uds_path = d.vsock.uds_path;
  }
  if (i != vm.machine->virtio_count() || (c.balloon && !vm.balloon) || (c.vsock && !vm.vsock)) {
    vm.devices.clear();  // a config that does not describe the devices: no handles
    vm.balloon = nullptr;
    vm.vsock = nullptr;
  }
  return vm;
}

Status Vmm::snapshot_load(const SnapshotLoad& l) {
  if (status_ != VmStatus::kNotStarted)
    return Error::invalid(cat("snapshot/load: only before the VM starts (it is ", status_name(status_), ")"));
  SerialSink* sink = serial_.get();
  snapshot::RestoreOptions ro;
  ro.state_path = absolute_path(l.state_path);
  ro.memory_path = l.memory_path.empty() ? "" : absolute_path(l.memory_path);
  ro.prefault = l.prefault;
  ro.track_dirty_pages = l.track_dirty_pages;
  ro.paused = !l.resume;
  ro.kvm_device = opts_.config.kvm_device;
  ro.serial_out = [sink](uint8_t b) { sink->put(b); };
  auto t0 = std::chrono::steady_clock::now();
  ro.nets = TRY(net_overrides(l, opts_.id, ro.state_path));
  if (l.clone) {
    ro.overlay_dir = paths_.dir;
    ro.vsock_uds = path_join(paths_.dir, "vsock.sock");  // the snapshot's VM may still hold its socket
  }
  auto r = TRY(snapshot::restore_snapshot(ro));
  VmConfig c;
  if (!r.state.vm_config.empty()) {
    auto parsed = parse_vm_config_text(r.state.vm_config);
    if (parsed) c = std::move(*parsed);
  }
  c.machine.vcpu_count = r.state.spec.cpus;
  c.machine.mem_size_mib = r.state.spec.memory >> 20;
  c.machine.track_dirty_pages = l.track_dirty_pages;
  c.kvm_device = opts_.config.kvm_device;
  BuiltVm vm = adopt_machine(std::move(r.machine), r.state, c);
  opts_.config = std::move(c);
  vm_ = std::move(vm);
  status_ = l.resume ? VmStatus::kRunning : VmStatus::kPaused;
  started_at_ = static_cast<int64_t>(::time(nullptr));
  start_us_ = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count());
  std::string gen;
  if (r.generation_id)
    for (uint8_t b : *r.generation_id) gen += cat(std::string(1, "0123456789abcdef"[b >> 4]), std::string(1, "0123456789abcdef"[b & 15]));
  log::info("vmm", cat("VM ", opts_.id, " restored from ", ro.state_path, " in ", r.stats.total_ms, " ms",
                       gen.empty() ? std::string() : cat(", VM generation ID ", gen)));
  return ok();
}

void Vmm::add_snapshot_routes() {
  router_.add("PUT", "/snapshot/create", [this](const api::ApiCall& c) {
    auto body = c.json();
    if (!body) return api::bad_request(body.error());
    auto s = snapshot_create(*body);
    return s ? api::no_content() : api::bad_request(s.error());
  });
  router_.add("PUT", "/snapshot/load", [this](const api::ApiCall& c) {
    auto body = c.json();
    if (!body) return api::bad_request(body.error());
    auto l = parse_snapshot_load(*body);
    if (!l) return api::bad_request(l.error());
    auto s = snapshot_load(*l);
    return s ? api::no_content() : api::bad_request(s.error());
  });
}

}  // namespace vessel::vmm
