#include "vmm/arch/x86_64/msr.h"

#include <cstring>

namespace vessel::vmm::x86 {

std::vector<kvm_msr_entry> boot_msrs() {
  auto msr = [](uint32_t index, uint64_t data) {
    kvm_msr_entry e{};
    e.index = index;
    e.data = data;
    return e;
  };
  return {
      msr(0x174, 0),                 // IA32_SYSENTER_CS
      msr(0x175, 0),                 // IA32_SYSENTER_ESP
      msr(0x176, 0),                 // IA32_SYSENTER_EIP
      msr(0xc0000081, 0),            // STAR
      msr(0xc0000082, 0),            // LSTAR
      msr(0xc0000083, 0),            // CSTAR
      msr(0xc0000084, 0),            // SYSCALL_MASK
      msr(0xc0000102, 0),            // KERNEL_GS_BASE
      msr(0x10, 0),                  // IA32_TSC
      msr(0x1a0, 1),                 // IA32_MISC_ENABLE: fast strings
      msr(0x2ff, (1 << 11) | 6),     // MTRRdefType: enabled, default write-back
  };
}

void set_lint_pins(kvm_lapic_state& lapic) {
  auto set = [&](uint32_t reg, uint32_t mode) {
    uint32_t v;
    std::memcpy(&v, lapic.regs + reg, 4);
    v = (v & ~0x700u) | (mode << 8);
    std::memcpy(lapic.regs + reg, &v, 4);
  };
  set(kApicLvtLint0, 0x7);  // ExtINT
  set(kApicLvtLint1, 0x4);  // NMI
}

}  // namespace vessel::vmm::x86
