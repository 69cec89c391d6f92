// Boot-time MSRs (what a BIOS would leave) and the local APIC LINT pins.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace vessel::vmm::x86 {

// SYSENTER/SYSCALL MSRs zeroed, TSC 0, fast strings on, MTRRs enabled with
// write-back as the default type.
std::vector<kvm_msr_entry> boot_msrs();

// LINT0 as ExtINT (the 8259 path) and LINT1 as NMI, as on a PC.
void set_lint_pins(kvm_lapic_state& lapic);

inline constexpr uint32_t kApicLvtLint0 = 0x350, kApicLvtLint1 = 0x360;

}  // namespace vessel::vmm::x86
