// Machine: a KVM virtual machine with its guest RAM, vCPUs and platform
// devices (COM1, CMOS RTC, i8042, ACPI sleep registers, the 0xCF9 reset
// register) on the buses, plus
// virtio-mmio devices (each with its worker thread, ioeventfds and irqfd).
//
//   auto m = TRY(Machine::create(cfg));
//   TRY(m->load_linux(sources));      // or set_entry() for a raw guest
//   RunResult r = m->run();           // or start() / stop_fd() / finish()
//
// The device and vCPU state live in *State structs, so snapshots can be
// added without changing the behaviour code.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/bus.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/reset_control.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/memory.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/worker.h"
#include "vmm/vcpu.h"

namespace vessel::vmm {

struct MachineConfig {
  std::string kvm_device = "/dev/kvm";
  unsigned cpus = 1;
  uint64_t memory = 128ULL << 20;
  // In-kernel LAPIC/IOAPIC/PIC and PIT. Off only for tiny test guests
  // whose HLT should end the run (with an irqchip HLT waits in KVM).
  bool irqchip = true;
  // Where COM1 output goes (nullptr: dropped).
  Serial::OutFn serial_out;
  // KVM dirty page logging on the memory slots (and of the VMM's own writes):
  // what diff snapshots are made of.
  bool track_dirty_pages = false;
  // Dirty pages come from a ring of this many entries per vCPU where KVM
  // offers one (KVM_CAP_DIRTY_LOG_RING: the cost follows the pages written,
  // not the size of guest RAM); else, and with 0 (the default), from the
  // slots' bitmaps.
  uint32_t dirty_ring_entries = 0;
  // Guest RAM as private anonymous memory marked MADV_MERGEABLE (KSM may
  // share identical pages between guests) instead of a shared memfd.
  bool mergeable = false;
};

struct RunResult {
  StopReason reason = StopReason::kStopped;
  std::string detail;  // the error message (with registers) for kError
};

class Machine : public VcpuHost {
 public:
  static constexpr unsigned kMaxCpus = 254;

  static Result<std::unique_ptr<Machine>> create(const MachineConfig& cfg);
  ~Machine() override;

  // Adds a virtio-mmio device (before load_linux(), which lists it in the
  // DSDT): the next 4 KiB MMIO window and GSI, an ioeventfd per queue, an
  // irqfd and a worker thread.
  Result<virtio::MmioTransport*> add_virtio_device(std::unique_ptr<virtio::VirtioDevice> dev, std::string name);

  // Writes the ACPI tables and loads kernel, initrd and command line.
  Status load_linux(x86::BootSources src);
  // Sets how the boot vCPU starts (raw guests in tests).
  void set_entry(const x86::BootEntry& e) { entry_ = e; }

  GuestMemory& memory() { return mem_; }
  Bus& pio_bus() { return pio_; }
  Bus& mmio_bus() { return mmio_; }
  Serial& serial() { return *serial_; }
  VmFd& vm_fd() { return vm_; }

  // Starts one thread per vCPU.
  Status start();
  // Readable once the machine is stopping (for poll loops).
  int stop_fd() const { return stop_fd_.get(); }
  // Stops and joins the vCPU threads; returns why the machine stopped.
  RunResult finish();
  // start() + wait + finish().
  RunResult run();

  // Pause: every vCPU leaves KVM_RUN (a pending I/O exit is completed first)
  // and parks, the virtio workers stop consuming their queues, and the
  // guest's kvmclock is saved so that it does not jump on resume. Returns once
  // all of that is done. An error when the machine is not running, already
  // paused, or stopping.
  Status pause();
  // Undoes pause(): the kvmclock is restored, workers and vCPUs continue.
  Status resume();
  bool paused() const { return paused_.load(std::memory_order_acquire); }
  // Whether the vCPU threads were started (start(), start_paused()); called
  // by the thread that starts and finishes the machine.
  bool started() const { return !threads_.empty(); }
  // Presses Ctrl-Alt-Del on the i8042 keyboard (Firecracker's SendCtrlAltDel):
  // a Linux guest's init then shuts down or reboots.
  Status send_ctrl_alt_del();

  // ---- Snapshot support (src/vmm/snapshot reads and sets the state through these) ----

  // A machine over existing guest RAM (a snapshot's memory file) whose vCPUs
  // get no boot state: the snapshot's state is set before resume() (before
  // or after start_paused()).
  static Result<std::unique_ptr<Machine>> create_restored(const MachineConfig& cfg, GuestMemory mem);
  // Starts the vCPU threads parked before their first KVM_RUN (no entry
  // point needed; the virtio workers wait too): returns with paused() true;
  // resume() runs the guest.
  Status start_paused();
  // What a snapshot reads of the vCPUs that cannot change once they have run
  // (KVM refuses new CPUID after KVM_RUN; the TSC frequency is set before),
  // and the MSR indices it saves: kept here once known (src/vmm/snapshot
  // finds them before the vCPUs first run, or takes them from the state it
  // restores), so that a capture in a pause (a migration's downtime) does
  // not read them again. Empty: not known. Used by the thread that pauses.
  struct VcpuConstants {
    std::vector<std::vector<kvm_cpuid_entry2>> cpuid;  // by vCPU
    uint32_t tsc_khz = 0;                              // every vCPU's
    std::vector<uint32_t> msrs;                        // in the order they are read and set back
  };
  VcpuConstants& vcpu_constants() { return vcpu_constants_; }

  unsigned cpu_count() const { return cpus_; }
  // The exits of all vCPUs so far (metrics).
  VcpuExitCounts vcpu_exit_counts() const;
  VcpuFd& vcpu_fd(unsigned i) { return vcpus_[i]->fd(); }
  const Kvm& kvm() const { return kvm_; }
  bool has_irqchip() const { return irqchip_; }
  Rtc& rtc() { return *rtc_; }
  I8042& i8042() { return *i8042_; }
  AcpiPm& acpi_pm() { return *acpi_pm_; }
  size_t virtio_count() const { return virtio_.size(); }
  virtio::MmioTransport& virtio_transport(size_t i) { return *virtio_[i].transport; }
  // The kvmclock saved by pause() (nullopt when KVM gave none), and the one
  // resume() will set (a restored machine's).
  std::optional<kvm_clock_data> paused_clock() const;
  void set_paused_clock(const kvm_clock_data& c);
  bool tracks_dirty_pages() const { return track_dirty_; }
  // Whether set_dirty_logging() got KVM's manual dirty-log protection (VmFd::enable_manual_dirty_protect).
  bool manual_dirty_protect() const { return manual_dirty_protect_; }
  // The entries of each vCPU's dirty ring, 0 when the bitmaps are used
  // (dirty_ring_note() then says why, unless the config asked for none).
  uint32_t dirty_ring_entries() const { return ring_entries_; }
  const std::string& dirty_ring_note() const { return ring_note_; }
  // How many times a vCPU stopped because its dirty ring was full.
  uint64_t dirty_ring_full_exits() const { return ring_full_exits_.load(std::memory_order_relaxed); }
  // Pages written since the last call (or since the machine was made): KVM's
  // dirty log of every slot merged with the VMM's own writes, one bit per
  // 4 KiB page of the linear backing. An error without track_dirty_pages.
  Result<std::vector<uint64_t>> take_dirty_pages();
  // Turns dirty page logging on for a machine made without it (live
  // migration: KVM_MEM_LOG_DIRTY_PAGES on every slot, and the VMM's own
  // writes), or back off; a machine made with track_dirty_pages keeps it.
  Status set_dirty_logging(bool on);
  // The id of the snapshot this machine's memory was last saved to or
  // restored from (0: none): what a diff snapshot applies to.
  uint64_t last_snapshot_id() const { return last_snapshot_id_; }
  void set_last_snapshot_id(uint64_t id) { last_snapshot_id_ = id; }

  // ---- VM generation ID (ACPI VMGENID: Linux reseeds its RNG when it changes) ----

  // Guest address of the 16-byte generation ID (0: no VMGENID device; a
  // machine booted by load_linux() with an irqchip has one).
  uint64_t vmgenid_addr() const { return vmgenid_addr_; }
  // A restored machine's (from its snapshot).
  void set_vmgenid_addr(uint64_t addr) { vmgenid_addr_ = addr; }
  // Writes a new random generation ID into guest memory and returns it; the
  // guest is notified (a GED interrupt) by the next resume(). An error
  // without a VMGENID device.
  Result<std::array<uint8_t, 16>> new_generation_id();

  // VcpuHost: the first reason wins.
  void request_stop(StopReason reason, std::string detail = {}) override;
  bool stopping() const override { return stopping_.load(std::memory_order_acquire); }
  bool restart_announced() const override { return acpi_pm_->s5_announced(); }
  void park_if_paused(Vcpu& vcpu) override;
  void dirty_ring_full(Vcpu& vcpu) override;

 private:
  explicit Machine(GuestMemory mem) : mem_(std::move(mem)) {}
  // Leaves the in-kernel 8259s as a BIOS would: based at 0x08/0x70, masked.
  Status mask_legacy_pic();
  Status init(const MachineConfig& cfg, bool restoring = false);
  // Creates vCPU `i` and maps its dirty ring when there is one.
  Result<VcpuFd> create_vcpu(unsigned i, size_t mmap_size);
  // Moves every ring's entries into the memory's dirty bitmap and resets the
  // rings (under ring_mu_). An error only from KVM_RESET_DIRTY_RINGS.
  Status harvest_dirty_rings();
  // The kick handler, then (with `workers`) the virtio workers, then a thread per vCPU.
  void start_threads(bool workers);
  // The guest learns of a new VM generation ID (a restore or clone set one): the GED interrupt.
  Status notify_generation();
  void stop_workers();

  // A virtio-mmio device and what connects it to KVM.
  struct VirtioSlot {
    std::unique_ptr<virtio::MmioTransport> transport;
    std::unique_ptr<virtio::DeviceWorker> worker;
    UniqueFd irqfd;
    uint64_t base = 0;
    uint32_t gsi = 0;
  };

  Kvm kvm_;
  VmFd vm_;
  GuestMemory mem_;
  Bus pio_, mmio_;
  std::unique_ptr<Serial> serial_;
  std::unique_ptr<Rtc> rtc_;
  std::unique_ptr<I8042> i8042_;
  std::unique_ptr<AcpiPm> acpi_pm_;
  std::unique_ptr<ResetControl> reset_control_;
  std::vector<VirtioSlot> virtio_;  // declared after mem_: transports use it
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  std::vector<std::thread> threads_;
  bool guest_ran_ = false;  // start() or resume() let the vCPUs run: no more devices
  std::optional<x86::BootEntry> entry_;
  unsigned cpus_ = 1;
  bool irqchip_ = true;
  bool track_dirty_ = false;
  bool track_dirty_configured_ = false;  // by MachineConfig (set_dirty_logging(false) keeps it)
  bool manual_dirty_protect_ = false;    // set_dirty_logging() turned KVM's manual protection on
  uint32_t ring_entries_ = 0;
  std::string ring_note_;
  std::vector<DirtyRing> rings_;  // one per vCPU with a ring, guarded by ring_mu_
  std::mutex ring_mu_;
  std::atomic<uint64_t> ring_full_exits_{0};
  VcpuConstants vcpu_constants_;
  uint64_t last_snapshot_id_ = 0;
  uint64_t vmgenid_addr_ = 0;
  bool generation_changed_ = false;  // resume() notifies the guest

  UniqueFd stop_fd_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  RunResult result_;

  // Pause: pause_requested_ and parked_ are guarded by pause_mu_; paused_ is
  // set once every vCPU is parked and the workers are stopped.
  std::mutex pause_mu_;
  std::condition_variable pause_cv_;
  bool pause_requested_ = false;
  unsigned parked_ = 0;
  std::atomic<bool> paused_{false};
  kvm_clock_data clock_{};
  bool clock_saved_ = false;
};

}  // namespace vessel::vmm
