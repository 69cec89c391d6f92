// VM snapshots: create one from a paused Machine, restore one into a new
// Machine in milliseconds, merge a diff onto its full snapshot.
//
//   auto m = TRY(snapshot::build_machine(spec, cfg));         // boot it as usual, run, pause()
//   TRY(snapshot::create_snapshot(*m, spec, {.state_path = "s/state", .memory_path = "s/memory"}));
//   auto r = TRY(snapshot::restore_snapshot({.state_path = "s/state"}));   // running again
//
// A snapshot is a state file (state_file.h: vCPUs, irqchip, PIT, clock,
// devices, machine spec, the disks it needs) and a memory file
// (memory_file.h). Restore maps the memory file MAP_PRIVATE: pages load on
// demand, writes are copy-on-write, and restores of one snapshot share
// their unwritten pages through the page cache.
#pragma once

#include <cstdint>
#include <array>
#include <memory>
#include <optional>
#include <string>

#include "common/error.h"
#include "vmm/machine.h"
#include "vmm/snapshot/state.h"

namespace vessel::vmm::snapshot {

// Builds a fresh machine (to boot) from `spec`: vCPUs, memory, irqchip and
// virtio devices (disks opened, taps attached). `base` gives the KVM device,
// the serial output and dirty tracking; its cpus/memory/irqchip come from `spec`.
Result<std::unique_ptr<Machine>> build_machine(const VmSpec& spec, MachineConfig base);

struct CreateOptions {
  std::string state_path;
  std::string memory_path;
  // Only the pages written since the last snapshot of this machine (or the
  // one it was restored from); needs MachineConfig::track_dirty_pages.
  bool diff = false;
  // Stored as is and given back by restore (the VMM's JSON config of the VM).
  std::string vm_config;
};

struct CreateStats {
  uint64_t id = 0;
  double capture_ms = 0;  // vCPU, VM and device state
  double memory_ms = 0;   // writing the memory file
  double total_ms = 0;
  uint64_t memory_scanned = 0;  // bytes of RAM looked at
  uint64_t memory_written = 0;  // bytes of non-zero pages written
};

// Snapshots a paused machine. `spec` must describe it (vCPUs, memory,
// devices in order). Disks are flushed and recorded (path, size, mtime).
// The memory file is written before the state file; both replace existing
// files atomically.
Result<CreateStats> create_snapshot(Machine& m, const VmSpec& spec, const CreateOptions& o);

// A restored VM's NIC on another tap and/or with another MAC (clones).
struct NetOverride {
  size_t nic = 0;     // the NIC's position among the snapshot's NICs
  std::string tap;    // empty: the snapshot's
  std::optional<virtio::MacAddress> mac;  // the MAC the device reports from now on
};

struct RestoreOptions {
  std::string state_path;
  std::string memory_path;  // empty: the path recorded in the state file
  bool prefault = false;    // read every page in now (MADV_POPULATE_READ)
  bool track_dirty_pages = false;  // so that diff snapshots can be taken of the restored VM
  bool paused = false;      // leave the VM paused (resume() runs it)
  std::string kvm_device = "/dev/kvm";
  Serial::OutFn serial_out;
  // Clones: other taps and MACs for the snapshot's NICs.
  std::vector<NetOverride> nets;
  // Non-empty: each writable disk gets a qcow2 overlay created in this
  // directory (disk<N>.qcow2, N its device index) over the snapshot's image,
  // so the restored VM never writes that image (one per clone).
  std::string overlay_dir;
  // Non-empty: the vsock device listens on this unix socket instead of the
  // snapshot's (a clone next to a running VM cannot take its socket).
  std::string vsock_uds;
  // Open tap files for the NICs, in NIC order (-1: open the spec's tap by
  // name): handed over by the VMM that ran the VM on this host (vm upgrade),
  // as the tap cannot be opened twice. Duplicated, not taken.
  std::vector<int> tap_fds;
  // The vsock device's listening socket, handed over the same way (-1: bind
  // the spec's uds_path). Duplicated, not taken; the device leaves the path
  // in place until its VMM owns it (VsockDevice::set_owns_path).
  int vsock_listener_fd = -1;
  // What KVM_GET_SUPPORTED_CPUID gave, when the caller already read it (a
  // migration's receiver, at the HELLO): not read again in the downtime.
  // Empty: read here.
  std::vector<kvm_cpuid_entry2> supported_cpuid;
};

struct RestoreStats {
  double load_ms = 0;     // read and check the state file, disks and host CPU
  double machine_ms = 0;  // create the VM, map memory, open devices
  double apply_ms = 0;    // set vCPU, VM and device state
  double start_ms = 0;    // start the vCPU threads (and resume)
  double total_ms = 0;
};

struct Restored {
  std::unique_ptr<Machine> machine;
  // The snapshot's state, its spec as restored (overlay paths, taps, MACs).
  SnapshotState state;
  // The new VM generation ID (none: the snapshot's machine has no VMGENID).
  std::optional<std::array<uint8_t, 16>> generation_id;
  RestoreStats stats;
};

// Restores a full snapshot into a new machine, running unless `paused`.
// A machine with a VMGENID device gets a new generation ID, and its guest
// is notified when it runs (Linux reseeds its RNG): every restore is a new
// generation, so clones of one snapshot do not share randomness.
// A vsock device's connections do not survive: its driver gets a transport
// reset event and reconnects. A balloon keeps its target, size and statistics.
// Refused, with nothing started: a bad state file, a diff snapshot, a
// memory file of the wrong size, a changed or missing disk, a host CPU
// without a feature the vCPUs use.
Result<Restored> restore_snapshot(const RestoreOptions& o);

// A live migration's restore, in two steps, so that the machine is built
// before the source pauses. prepare_machine(): the machine of `spec` over
// `mem` (its RAM, which the migration then fills): the KVM VM, irqchip,
// memory slots and vCPUs, without state or devices.
Result<std::unique_ptr<Machine>> prepare_machine(const VmSpec& spec, GuestMemory mem, const RestoreOptions& o);
// restore_prepared(): state `s` (which came without files) set on machine
// `m` from prepare_machine() (the same vCPUs, memory, irqchip): the same
// checks as restore_snapshot (host CPU, disks), the devices added, the vCPU,
// VM and device state set, the vCPUs started (and resumed unless o.paused).
// o.state_path and o.memory_path are unused.
Result<Restored> restore_prepared(std::unique_ptr<Machine> m, SnapshotState s, const RestoreOptions& o);

struct MergeOptions {
  std::string base_state;
  std::string diff_state;
  // Their memory files (empty: the paths recorded in the state files).
  std::string base_memory;
  std::string diff_memory;
  // Where the merged full snapshot goes (may be the base's files).
  std::string out_state;
  std::string out_memory;
};

// Applies a diff snapshot onto the full snapshot it was taken from: the
// result is a full snapshot with the diff's CPU and device state.
Status merge_snapshot(const MergeOptions& o);

// Checks that every recorded disk is still the same file (size and mtime).
Status check_disks(const std::vector<DiskRecord>& disks);
// Makes the completed writes of the machine's disks (devices of `spec`) durable.
Status flush_disks(Machine& m, const VmSpec& spec);
// The record of an image file as it is now (size, mtime).
Result<DiskRecord> disk_record(const std::string& path);

}  // namespace vessel::vmm::snapshot
