// Thin wrappers over the KVM ioctls: the /dev/kvm system fd, a VM fd and a
// vCPU fd. Each method is one ioctl with its error named; policy lives in
// the callers (vm_runner, arch/x86_64).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::vmm {

// The KVM system fd (/dev/kvm or a path given for tests).
class Kvm {
 public:
  static Result<Kvm> open(const std::string& path);
  int fd() const { return fd_.get(); }
  // KVM_CHECK_EXTENSION: 0 when unsupported.
  int check_extension(long cap) const;
  Result<size_t> vcpu_mmap_size() const;
  // KVM_GET_SUPPORTED_CPUID.
  Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
  // KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and emulate (snapshots filter it by what a vCPU reads).
  Result<std::vector<uint32_t>> msr_index_list() const;

 private:
  UniqueFd fd_;
};

// A VM fd.
class VmFd {
 public:
  static Result<VmFd> create(const Kvm& kvm);
  int fd() const { return fd_.get(); }
  // KVM_CHECK_EXTENSION on the VM (KVM_CAP_XSAVE2 answers the XSAVE size here); 0 when unsupported.
  int check_extension(long cap) const;
  Status set_tss_addr(uint64_t addr);
  Status set_identity_map_addr(uint64_t addr);
  Status create_irqchip();
  Status create_pit2();
  Status set_user_memory_region(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host);
  // The same with flags (KVM_MEM_LOG_DIRTY_PAGES: dirty page tracking for diff snapshots).
  Status set_user_memory_region(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host, uint32_t flags);
  // KVM_GET_DIRTY_LOG: the slot's pages written since the last call (one bit per 4 KiB page,
  // `pages` bits), and clears them.
  Result<std::vector<uint64_t>> get_dirty_log(uint32_t slot, uint64_t pages);
  // KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with KVM_DIRTY_LOG_INITIALLY_SET where
  // KVM offers both (Linux 5.3+): KVM_GET_DIRTY_LOG then leaves the bits and
  // the pages' write protection alone (clear_dirty_log() clears and
  // re-protects), and a slot that starts logging starts all dirty instead of
  // write-protecting all of it at once. Whether it is on.
  bool enable_manual_dirty_protect();
  // KVM_CLEAR_DIRTY_LOG of `bits` (as get_dirty_log() returned them) over the slot's `pages`.
  Status clear_dirty_log(uint32_t slot, uint64_t pages, std::vector<uint64_t>& bits);
  // KVM_CAP_DIRTY_LOG_RING (Linux 5.11): each vCPU gets a ring of `entries`
  // dirty-page records (DirtyRing) instead of the slots' bitmaps (then
  // KVM_GET_DIRTY_LOG fails). Only before the first vCPU exists. Returns the
  // entries enabled: fewer when KVM's maximum is smaller, 0 when this KVM
  // has no ring or refused it (`why` then says which).
  uint32_t enable_dirty_ring(uint32_t entries, std::string* why = nullptr);
  // KVM_RESET_DIRTY_RINGS: write-protects again the pages of every ring entry
  // harvested (DirtyRing::harvest) and frees those entries.
  Status reset_dirty_rings();
  // KVM_GET_IRQCHIP / KVM_SET_IRQCHIP: chip 0 PIC master, 1 PIC slave, 2 IOAPIC.
  Result<kvm_irqchip> get_irqchip(uint32_t chip_id) const;
  Status set_irqchip(const kvm_irqchip& chip);
  // KVM_GET_PIT2 / KVM_SET_PIT2: the in-kernel i8254.
  Result<kvm_pit_state2> get_pit2() const;
  Status set_pit2(const kvm_pit_state2& pit);
  // KVM_IRQ_LINE: drives an input pin of the in-kernel PIC/IOAPIC.
  Status irq_line(uint32_t irq, bool level);
  Result<UniqueFd> create_vcpu(unsigned id);
  // KVM_IOEVENTFD: a `len`-byte MMIO write of `datamatch` to `addr` signals `fd` instead of exiting.
  Status register_ioeventfd(int fd, uint64_t addr, uint32_t len, uint64_t datamatch);
  // KVM_IRQFD: writing to `fd` pulses GSI `gsi` (an edge).
  Status register_irqfd(int fd, uint32_t gsi);
  // KVM_GET_CLOCK / KVM_SET_CLOCK: the guest's kvmclock (ns), kept still while the VM is paused.
  Result<kvm_clock_data> get_clock() const;
  Status set_clock(const kvm_clock_data& c);

 private:
  UniqueFd fd_;
};

// A vCPU's dirty ring (VmFd::enable_dirty_ring), mapped from its fd. KVM
// publishes an entry (slot, page offset in the slot) when the vCPU first
// writes a write-protected page; harvest() takes them in order.
// Not thread-safe: one harvester at a time (the machine's lock).
class DirtyRing {
 public:
  static Result<DirtyRing> map(int vcpu_fd, unsigned vcpu_id, uint32_t entries);
  DirtyRing(DirtyRing&&) noexcept;
  DirtyRing& operator=(DirtyRing&&) = delete;
  ~DirtyRing();

  // Calls fn(slot, offset) for each entry published since the last call,
  // marks it harvested (for VmFd::reset_dirty_rings) and returns how many.
  template <class F>
  uint32_t harvest(F&& fn) {
    uint32_t n = 0;
    for (; n < entries_; ++n) {
      kvm_dirty_gfn& g = gfns_[fetch_ & (entries_ - 1)];
      if (!(__atomic_load_n(&g.flags, __ATOMIC_ACQUIRE) & KVM_DIRTY_GFN_F_DIRTY)) break;
      fn(g.slot, g.offset);
      __atomic_store_n(&g.flags, static_cast<uint32_t>(KVM_DIRTY_GFN_F_RESET), __ATOMIC_RELEASE);
      ++fetch_;
    }
    return n;
  }

 private:
  DirtyRing() = default;
  kvm_dirty_gfn* gfns_ = nullptr;
  uint32_t entries_ = 0;  // a power of two
  uint32_t fetch_ = 0;
};

// A vCPU fd with its mapped kvm_run area.
class VcpuFd {
 public:
  static Result<VcpuFd> create(VmFd& vm, unsigned id, size_t mmap_size);
  VcpuFd(VcpuFd&&) noexcept;
  VcpuFd& operator=(VcpuFd&&) = delete;
  ~VcpuFd();

  int fd() const { return fd_.get(); }
  unsigned id() const { return id_; }
  kvm_run* run_area() const { return run_; }
  // KVM_RUN; returns -errno (e.g. -EINTR) instead of an Error so the hot loop allocates nothing.
  int run();

  Result<kvm_regs> get_regs() const;
  Status set_regs(const kvm_regs& r);
  Result<kvm_sregs> get_sregs() const;
  Status set_sregs(const kvm_sregs& s);
  Result<kvm_fpu> get_fpu() const;
  Status set_fpu(const kvm_fpu& f);
  Status set_cpuid(std::span<const kvm_cpuid_entry2> entries);
  // KVM_GET_CPUID2: the CPUID table the vCPU was given.
  Result<std::vector<kvm_cpuid_entry2>> get_cpuid() const;
  // Sets all MSRs or fails naming the first one KVM refused.
  Status set_msrs(std::span<const kvm_msr_entry> entries);
  // KVM_GET_MSRS: fills entries[i].data for each index; returns how many KVM read
  // (it stops at the first MSR it cannot read).
  Result<size_t> get_msrs(std::span<kvm_msr_entry> entries) const;
  Result<kvm_lapic_state> get_lapic() const;
  Status set_lapic(const kvm_lapic_state& l);
  // KVM_GET_XSAVE2 (when `size` > 4096, KVM_CAP_XSAVE2) or KVM_GET_XSAVE: the
  // XSAVE area, `size` bytes. KVM_SET_XSAVE takes it back.
  Result<std::vector<uint8_t>> get_xsave(size_t size) const;
  Status set_xsave(std::span<const uint8_t> area);
  Result<kvm_xcrs> get_xcrs() const;
  Status set_xcrs(const kvm_xcrs& x);
  Result<kvm_mp_state> get_mp_state() const;
  Status set_mp_state(const kvm_mp_state& m);
  Result<kvm_vcpu_events> get_vcpu_events() const;
  Status set_vcpu_events(const kvm_vcpu_events& e);
  Result<kvm_debugregs> get_debugregs() const;
  Status set_debugregs(const kvm_debugregs& d);
  // KVM_GET_TSC_KHZ / KVM_SET_TSC_KHZ: the guest TSC frequency.
  Result<uint32_t> get_tsc_khz() const;
  Status set_tsc_khz(uint32_t khz);
  // The guest TSC's offset from the host's (KVM_VCPU_TSC_CTRL / KVM_VCPU_TSC_OFFSET,
  // Linux 5.16): nullopt when this KVM lacks the attribute. Setting it bypasses
  // the matching KVM applies to a host write of MSR_IA32_TSC.
  Result<std::optional<uint64_t>> get_tsc_offset() const;
  Status set_tsc_offset(uint64_t offset);

 private:
  VcpuFd() = default;
  UniqueFd fd_;
  unsigned id_ = 0;
  kvm_run* run_ = nullptr;
  size_t mmap_size_ = 0;
};

}  // namespace vessel::vmm
