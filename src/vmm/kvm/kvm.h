// Thin wrappers over the KVM ioctls: the /dev/kvm system fd, a VM fd and a
// vCPU fd. Each method is one ioctl with its error named; policy lives in
// the callers (vm_runner, arch/x86_64).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
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

 private:
  UniqueFd fd_;
};

// A VM fd.
class VmFd {
 public:
  static Result<VmFd> create(const Kvm& kvm);
  int fd() const { return fd_.get(); }
  Status set_tss_addr(uint64_t addr);
  Status set_identity_map_addr(uint64_t addr);
  Status create_irqchip();
  Status create_pit2();
  Status set_user_memory_region(uint32_t slot, uint64_t guest_addr, uint64_t size, void* host);
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
  Status set_fpu(const kvm_fpu& f);
  Status set_cpuid(std::span<const kvm_cpuid_entry2> entries);
  // Sets all MSRs or fails naming the first one KVM refused.
  Status set_msrs(std::span<const kvm_msr_entry> entries);
  Result<kvm_lapic_state> get_lapic() const;
  Status set_lapic(const kvm_lapic_state& l);

 private:
  VcpuFd() = default;
  UniqueFd fd_;
  unsigned id_ = 0;
  kvm_run* run_ = nullptr;
  size_t mmap_size_ = 0;
};

}  // namespace vessel::vmm
