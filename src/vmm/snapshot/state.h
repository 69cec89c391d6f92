// SnapshotState: everything a VM snapshot holds besides guest memory, as
// plain data (no KVM, no files): the machine description (VmSpec), the
// disks it needs, the VM-wide KVM state, each vCPU, each device, and what
// the memory file holds. state_file.h turns it into bytes and back.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/virtio/balloon/balloon.h"
#include "vmm/virtio/block/block.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/net/net.h"
#include "vmm/virtio/vsock/vsock.h"

namespace vessel::vmm::snapshot {

// One virtio device of the machine, in the order it was added.
struct DeviceSpec {
  // kBalloon and kVsock: format version 3 on.
  enum class Kind : uint8_t { kBlock = 1, kNet = 2, kRng = 3, kBalloon = 4, kVsock = 5 };
  Kind kind = Kind::kRng;
  // Block: the image file and its options.
  std::string path;
  virtio::BlockOptions block;
  // Net: the tap and its options.
  virtio::NetOptions net;
  // Balloon: its features and target at the snapshot.
  virtio::BalloonOptions balloon;
  // Vsock: the guest CID and the host unix socket it listens on.
  virtio::VsockOptions vsock;
};

// What a restore needs to rebuild the machine before setting its state.
struct VmSpec {
  unsigned cpus = 1;
  uint64_t memory = 128ULL << 20;
  bool irqchip = true;
  std::vector<DeviceSpec> devices;
  // Guest address of the VM generation ID (0: no VMGENID device): a restore
  // writes a new ID there and notifies the guest. Format version 2 on.
  uint64_t vmgenid_addr = 0;
};

// An image file a snapshot depends on: restore refuses a file that differs.
struct DiskRecord {
  std::string path;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

// The in-kernel devices and clock of the VM.
struct VmState {
  bool irqchip = false;  // PIC, IOAPIC and PIT below are valid
  kvm_irqchip pic_master{};
  kvm_irqchip pic_slave{};
  kvm_irqchip ioapic{};
  kvm_pit_state2 pit{};
  bool has_clock = false;
  kvm_clock_data clock{};
};

// One vCPU, as KVM reports it while the vCPU is parked.
struct VcpuState {
  std::vector<kvm_cpuid_entry2> cpuid;
  kvm_mp_state mp_state{};
  kvm_regs regs{};
  kvm_sregs sregs{};
  std::vector<uint8_t> xsave;  // empty: fpu is used instead (no KVM_CAP_XSAVE)
  kvm_fpu fpu{};
  bool has_xcrs = false;
  kvm_xcrs xcrs{};
  kvm_debugregs debugregs{};
  bool has_lapic = false;
  kvm_lapic_state lapic{};
  std::vector<kvm_msr_entry> msrs;
  kvm_vcpu_events events{};
  uint32_t tsc_khz = 0;
};

// One virtio-mmio device: its transport (registers, queues) and device state.
struct VirtioState {
  uint32_t device_type = 0;
  virtio::MmioState mmio;
  std::optional<virtio::NetState> net;
  std::optional<virtio::BalloonState> balloon;  // format version 3 on
  std::optional<virtio::VsockState> vsock;      // format version 3 on
};

struct DeviceStates {
  SerialState serial;
  RtcState rtc;
  I8042State i8042;
  AcpiPmState acpi_pm;
  std::vector<VirtioState> virtio;
};

// What the memory file holds. A full snapshot's file is all of guest RAM
// (zero pages are holes); a diff's holds only `ranges` (byte offset, length
// in the linear RAM), written since the snapshot `parent_id`.
struct MemoryInfo {
  bool diff = false;
  uint64_t size = 0;
  std::string path;  // where the memory file was written
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
};

struct SnapshotState {
  std::string vessel_version;  // of the writer (filled by the encoder)
  uint64_t id = 0;             // random, unique per snapshot
  uint64_t parent_id = 0;      // a diff: the snapshot it applies to
  VmSpec spec;
  std::vector<DiskRecord> disks;
  VmState vm;
  std::vector<VcpuState> vcpus;
  DeviceStates devices;
  MemoryInfo memory;
  // The VMM's own description of the VM (its JSON config), kept opaque here:
  // a restore gives it back so that device ids and settings survive.
  std::string vm_config;
};

}  // namespace vessel::vmm::snapshot
