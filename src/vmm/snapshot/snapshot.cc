#include "vmm/snapshot/snapshot.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "common/fs.h"
#include "common/scope_exit.h"
#include "common/strings.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/disk/disk.h"
#include "vmm/disk/qcow2_create.h"
#include "vmm/snapshot/cpu_check.h"
#include "vmm/snapshot/machine_state.h"
#include "vmm/snapshot/memory_file.h"
#include "vmm/snapshot/state_file.h"
#include "vmm/virtio/balloon/balloon.h"
#include "vmm/virtio/block/block.h"
#include "vmm/virtio/net/net.h"
#include "vmm/virtio/rng/rng.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/vsock/vsock.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "unknown"
#endif

namespace vessel::vmm::snapshot {

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

uint32_t device_type(DeviceSpec::Kind k) {
  switch (k) {
    case DeviceSpec::Kind::kBlock: return virtio::kTypeBlock;
    case DeviceSpec::Kind::kNet: return virtio::kTypeNet;
    case DeviceSpec::Kind::kRng: return virtio::kTypeRng;
    case DeviceSpec::Kind::kBalloon: return virtio::kTypeBalloon;
    case DeviceSpec::Kind::kVsock: return virtio::vsock::kTypeVsock;
  }
  return 0;
}

// A duplicate of an fd another VMM handed over (RestoreOptions: taps, vsock).
Result<UniqueFd> dup_handed(int fd, const std::string& what) {
  UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!copy) return Error::from_errno(cat("duplicate the handed-over fd of ", what));
  return copy;
}

Status add_devices(Machine& m, const VmSpec& spec, const std::vector<int>& tap_fds = {}, int vsock_fd = -1) {
  size_t nic = 0;
  for (const auto& d : spec.devices) {
    switch (d.kind) {
      case DeviceSpec::Kind::kBlock: {
        auto image = TRYC(disk::open_disk(d.path, d.block.readonly), cat("disk ", d.path));
        auto dev = TRYC(virtio::BlockDevice::create(std::move(image), d.block), cat("disk ", d.path));
        TRY(m.add_virtio_device(std::move(dev), cat("virtio-blk ", d.path)));
        break;
      }
      case DeviceSpec::Kind::kNet: {
        int handed = nic < tap_fds.size() ? tap_fds[nic] : -1;
        ++nic;
        std::unique_ptr<virtio::NetDevice> dev;
        if (handed >= 0) {
          dev = TRYC(virtio::NetDevice::create_on_tap_fd(d.net, TRY(dup_handed(handed, cat("tap ", d.net.tap)))),
                     cat("net tap ", d.net.tap));
        } else {
          dev = TRYC(virtio::NetDevice::create(d.net), cat("net tap ", d.net.tap));
        }
        TRY(m.add_virtio_device(std::move(dev), cat("virtio-net ", d.net.tap)));
        break;
      }
      case DeviceSpec::Kind::kRng:
        TRY(m.add_virtio_device(std::make_unique<virtio::RngDevice>(), "virtio-rng"));
        break;
      case DeviceSpec::Kind::kBalloon: {
        auto dev = TRYC(virtio::BalloonDevice::create(d.balloon), "balloon");
        TRY(m.add_virtio_device(std::move(dev), "virtio-balloon"));
        break;
      }
      case DeviceSpec::Kind::kVsock: {
        std::unique_ptr<virtio::VsockDevice> dev;
        if (vsock_fd >= 0) {
          dev = TRYC(virtio::VsockDevice::adopt(d.vsock, TRY(dup_handed(vsock_fd, cat("vsock ", d.vsock.uds_path)))),
                     cat("vsock ", d.vsock.uds_path));
        } else {
          dev = TRYC(virtio::VsockDevice::create(d.vsock), cat("vsock ", d.vsock.uds_path));
        }
        TRY(m.add_virtio_device(std::move(dev), "virtio-vsock"));
        break;
      }
    }
  }
  return ok();
}

MachineConfig machine_config(const VmSpec& spec, MachineConfig base) {
  base.cpus = spec.cpus;
  base.memory = spec.memory;
  base.irqchip = spec.irqchip;
  return base;
}

// Points the spec (and the device state) at the clone's taps, MACs and disk overlays.
// The overlays it creates are listed in `created` (removed if the restore fails).
Status apply_overrides(SnapshotState& s, const RestoreOptions& o, std::vector<std::string>& created) {
  std::vector<size_t> nics;
  for (size_t i = 0; i < s.spec.devices.size(); ++i)
    if (s.spec.devices[i].kind == DeviceSpec::Kind::kNet) nics.push_back(i);
  for (const auto& n : o.nets) {
    if (n.nic >= nics.size())
      return Error::invalid(cat("network override for NIC ", n.nic, ": the snapshot has ", nics.size(), " NICs"));
    size_t i = nics[n.nic];
    auto& net = s.spec.devices[i].net;
    if (!n.tap.empty()) net.tap = n.tap;
    if (n.mac) {
      net.mac = *n.mac;
      net.mac_set = true;
      if (s.devices.virtio[i].net) s.devices.virtio[i].net->mac = *n.mac;
    }
  }
  if (!o.vsock_uds.empty())
    for (auto& d : s.spec.devices)
      if (d.kind == DeviceSpec::Kind::kVsock) d.vsock.uds_path = o.vsock_uds;
  if (o.overlay_dir.empty()) return ok();
  for (size_t i = 0; i < s.spec.devices.size(); ++i) {
    auto& d = s.spec.devices[i];
    if (d.kind != DeviceSpec::Kind::kBlock || d.block.readonly) continue;
    std::string overlay = path_join(absolute_path(o.overlay_dir), cat("disk", i, ".qcow2"));
    TRYC(disk::create_qcow2_overlay(overlay, absolute_path(d.path)), cat("overlay for disk ", d.path));
    created.push_back(overlay);
    d.path = overlay;
  }
  return ok();
}

Status check_spec(Machine& m, const VmSpec& spec) {
  if (spec.cpus != m.cpu_count()) return Error::invalid(cat("the spec has ", spec.cpus, " vCPUs, the VM ", m.cpu_count()));
  if (spec.memory != m.memory().size())
    return Error::invalid(cat("the spec has ", spec.memory, " bytes of memory, the VM ", m.memory().size()));
  if (spec.irqchip != m.has_irqchip()) return Error::invalid("the spec's irqchip setting differs from the VM's");
  if (spec.devices.size() != m.virtio_count())
    return Error::invalid(cat("the spec has ", spec.devices.size(), " devices, the VM ", m.virtio_count()));
  for (size_t i = 0; i < spec.devices.size(); ++i)
    if (device_type(spec.devices[i].kind) != m.virtio_transport(i).device().device_type())
      return Error::invalid(cat("device ", i, " of the spec is not the VM's"));
  return ok();
}
}  // namespace

Result<std::unique_ptr<Machine>> build_machine(const VmSpec& spec, MachineConfig base) {
  auto m = TRY(Machine::create(machine_config(spec, std::move(base))));
  TRY(add_devices(*m, spec));
  return m;
}

Status flush_disks(Machine& m, const VmSpec& spec) {
  for (size_t i = 0; i < m.virtio_count(); ++i)
    if (auto* blk = dynamic_cast<virtio::BlockDevice*>(&m.virtio_transport(i).device()))
      TRYC(blk->flush(), cat("flush disk ", i < spec.devices.size() ? spec.devices[i].path : ""));
  return ok();
}

Result<DiskRecord> disk_record(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0) return Error::from_errno(cat("disk ", path));
  return DiskRecord{path, static_cast<uint64_t>(st.st_size),
                    static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

Status check_disks(const std::vector<DiskRecord>& disks) {
  for (const auto& d : disks) {
    DiskRecord now = TRY(disk_record(d.path));
    if (now.size != d.size)
      return Error::invalid(cat("disk ", d.path, " changed since the snapshot: ", now.size, " bytes, the snapshot's had ", d.size));
    if (now.mtime_ns != d.mtime_ns)
      return Error::invalid(cat("disk ", d.path, " changed since the snapshot: it was modified after it (mtime ",
                                now.mtime_ns, " ns, recorded ", d.mtime_ns, ")"));
  }
  return ok();
}

Result<CreateStats> create_snapshot(Machine& m, const VmSpec& spec, const CreateOptions& o) {
  auto t0 = Clock::now();
  if (!m.paused()) return Error::invalid("the VM must be paused to be snapshotted");
  if (o.state_path.empty() || o.memory_path.empty()) return Error::invalid("snapshot state and memory paths are required");
  TRY(check_spec(m, spec));
  uint64_t parent = m.last_snapshot_id();
  if (o.diff) {
    if (!m.tracks_dirty_pages()) return Error::invalid("a diff snapshot needs a VM created with dirty page tracking");
    if (parent == 0) return Error::invalid("a diff snapshot needs a full snapshot of this VM first");
  }
  SnapshotState s;
  s.spec = spec;
  s.vm_config = o.vm_config;
  while (s.id == 0)
    if (::getrandom(&s.id, sizeof s.id, 0) != sizeof s.id) return Error::from_errno("getrandom");

  TRY(flush_disks(m, spec));
  for (const auto& d : spec.devices)
    if (d.kind == DeviceSpec::Kind::kBlock) s.disks.push_back(TRY(disk_record(d.path)));
  s.spec.vmgenid_addr = m.vmgenid_addr();
  TRY(capture_machine(m, s));
  CreateStats st;
  st.capture_ms = ms_since(t0);

  auto t1 = Clock::now();
  s.memory.size = m.memory().size();
  s.memory.path = absolute_path(o.memory_path);
  MemoryWriteStats ws;
  m.set_last_snapshot_id(0);  // until this one is complete, no diff may be based on anything
  if (o.diff) {
    auto bits = TRY(m.take_dirty_pages());
    s.parent_id = parent;
    s.memory.diff = true;
    s.memory.ranges = bitmap_ranges(bits, m.memory().size() / GuestMemory::kPageSize);
    ws = TRYC(write_diff_memory(m.memory(), s.memory.ranges, o.memory_path), "write the memory diff");
  } else {
    if (m.tracks_dirty_pages()) (void)TRY(m.take_dirty_pages());  // the next diff starts here
    ws = TRYC(write_full_memory(m.memory(), o.memory_path), "write the memory file");
  }
  st.memory_ms = ms_since(t1);
  TRYC(write_state_file(o.state_path, s, VESSEL_VERSION), "write the state file");
  m.set_last_snapshot_id(s.id);
  st.id = s.id;
  st.memory_scanned = ws.scanned;
  st.memory_written = ws.written;
  st.total_ms = ms_since(t0);
  return st;
}

namespace {

// An empty machine for state `s` over `mem`: the KVM VM, irqchip, memory
// slots and vCPUs without state (devices come with the state).
Result<std::unique_ptr<Machine>> create_machine(const VmSpec& spec, GuestMemory mem, const RestoreOptions& o) {
  MachineConfig cfg;
  cfg.kvm_device = o.kvm_device;
  cfg.serial_out = o.serial_out;
  cfg.track_dirty_pages = o.track_dirty_pages;
  return TRYC(Machine::create_restored(machine_config(spec, std::move(cfg)), std::move(mem)), "create the VM");
}

// Machine `m` of state `s` completed: its devices, the vCPU and device state,
// then the vCPUs started (and resumed unless o.paused), into out.machine and
// out.stats. `from_snapshot`: a restore or a clone records the snapshot (the
// parent of a later diff) and gets a new VM generation ID (the guest is
// notified by resume()); a migrated VM keeps its own.
Status start_machine(const SnapshotState& s, std::unique_ptr<Machine> m, const RestoreOptions& o, bool from_snapshot,
                     Clock::time_point t1, Restored& out) {
  TRY(add_devices(*m, s.spec, o.tap_fds, o.vsock_listener_fd));
  out.stats.machine_ms = ms_since(t1);

  auto t2 = Clock::now();
  TRYC(apply_machine(*m, s), "restore the VM state");
  if (from_snapshot) m->set_last_snapshot_id(s.id);
  if (s.spec.vmgenid_addr != 0) {
    m->set_vmgenid_addr(s.spec.vmgenid_addr);
    if (from_snapshot) out.generation_id = TRY(m->new_generation_id());
  }
  out.stats.apply_ms = ms_since(t2);

  auto t3 = Clock::now();
  if (!m->started()) TRYC(m->start_paused(), "start the vCPUs");  // a migration's receiver started them early
  if (!o.paused) TRYC(m->resume(), "resume the VM");
  out.stats.start_ms = ms_since(t3);
  out.machine = std::move(m);
  return ok();
}

}  // namespace

Result<Restored> restore_snapshot(const RestoreOptions& o) {
  auto t0 = Clock::now();
  Restored out;
  SnapshotState& s = out.state;
  s = TRY(read_state_file(o.state_path));
  if (s.memory.diff)
    return Error::invalid(cat(o.state_path, " is a diff snapshot: merge it onto its full snapshot first"));
  {
    Kvm kvm = TRY(Kvm::open(o.kvm_device));
    auto supported = TRY(kvm.supported_cpuid());
    for (const auto& v : s.vcpus) TRY(check_cpuid(v.cpuid, supported));
  }
  TRY(check_disks(s.disks));
  std::vector<std::string> overlays;
  ScopeExit drop_overlays([&] {
    for (const auto& p : overlays) (void)::unlink(p.c_str());
  });
  TRY(apply_overrides(s, o, overlays));
  std::string mem_path = o.memory_path.empty() ? s.memory.path : o.memory_path;
  UniqueFd mem_fd = TRYC(open_file(mem_path, O_RDONLY | O_CLOEXEC), "memory file");
  out.stats.load_ms = ms_since(t0);

  auto t1 = Clock::now();
  GuestMemory mem = TRYC(GuestMemory::map_file(std::move(mem_fd), s.spec.memory, x86::kMmioHoleStart,
                                               x86::kMmioHoleEnd, o.prefault),
                         cat("memory file ", mem_path));
  TRY(start_machine(s, TRY(create_machine(s.spec, std::move(mem), o)), o, true, t1, out));
  out.stats.total_ms = ms_since(t0);
  drop_overlays.dismiss();
  return out;
}

Status merge_snapshot(const MergeOptions& o) {
  SnapshotState base = TRY(read_state_file(o.base_state));
  SnapshotState diff = TRY(read_state_file(o.diff_state));
  if (base.memory.diff) return Error::invalid(cat(o.base_state, " is a diff snapshot, not a full one"));
  if (!diff.memory.diff) return Error::invalid(cat(o.diff_state, " is a full snapshot, not a diff"));
  if (diff.parent_id != base.id)
    return Error::invalid(cat(o.diff_state, " was not taken from ", o.base_state, " (it applies to snapshot ", diff.parent_id,
                              ", that one is ", base.id, ")"));
  if (diff.memory.size != base.memory.size) return Error::invalid("the diff and the base have different memory sizes");
  const std::string& base_mem = o.base_memory.empty() ? base.memory.path : o.base_memory;
  const std::string& diff_mem = o.diff_memory.empty() ? diff.memory.path : o.diff_memory;
  TRYC(merge_memory(base_mem, diff_mem, diff.memory.ranges, base.memory.size, o.out_memory),
       "merge the memory files");
  SnapshotState out = std::move(diff);
  out.memory.diff = false;
  out.memory.ranges.clear();
  out.memory.path = absolute_path(o.out_memory);
  out.parent_id = 0;
  return write_state_file(o.out_state, out, VESSEL_VERSION);
}

Result<std::unique_ptr<Machine>> prepare_machine(const VmSpec& spec, GuestMemory mem, const RestoreOptions& o) {
  if (mem.size() != spec.memory)
    return Error::invalid(cat("guest memory is ", mem.size(), " bytes, the machine has ", spec.memory));
  return create_machine(spec, std::move(mem), o);
}

Result<Restored> restore_prepared(std::unique_ptr<Machine> m, SnapshotState s, const RestoreOptions& o) {
  auto t0 = Clock::now();
  Restored out;
  if (s.memory.diff) return Error::invalid("a diff state cannot be restored on its own");
  if (s.spec.cpus != m->cpu_count() || s.spec.memory != m->memory().size() || s.spec.irqchip != m->has_irqchip())
    return Error::invalid(cat("the state's machine (", s.spec.cpus, " vCPUs, ", s.spec.memory, " bytes, irqchip ",
                              s.spec.irqchip ? "on" : "off", ") is not the one prepared (", m->cpu_count(), " vCPUs, ",
                              m->memory().size(), " bytes, irqchip ", m->has_irqchip() ? "on" : "off", ")"));
  if (m->virtio_count() != 0) return Error::invalid("the prepared machine already has devices");
  {
    auto supported = o.supported_cpuid.empty() ? TRY(m->kvm().supported_cpuid()) : o.supported_cpuid;
    for (const auto& v : s.vcpus) TRY(check_cpuid(v.cpuid, supported));
  }
  TRY(check_disks(s.disks));
  std::vector<std::string> created;  // none: migrations make no overlays
  TRY(apply_overrides(s, o, created));
  out.stats.load_ms = ms_since(t0);
  TRY(start_machine(s, std::move(m), o, false, Clock::now(), out));
  out.stats.total_ms = ms_since(t0);
  out.state = std::move(s);
  return out;
}

}  // namespace vessel::vmm::snapshot
