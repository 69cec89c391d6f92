// CPUID for a vCPU: KVM_GET_SUPPORTED_CPUID normalised to the VM's topology
// (one thread per core, `cpu_count` cores in one socket), the vCPU's APIC id,
// the hypervisor bit and the KVM signature leaf 0x40000000, with `CpuidExtras`.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <vector>

namespace vessel::vmm::x86 {

// What the VMM adds that KVM_GET_SUPPORTED_CPUID does not report (as QEMU's
// `-cpu host` does): the TSC-deadline timer, which KVM emulates with its in-kernel
// LAPIC but leaves for the VMM to announce (KVM_CAP_TSC_DEADLINE_TIMER), and the
// processor brand string of leaves 0x80000002-4, which KVM leaves empty (the guest's
// /proc/cpuinfo then names a made-up model, "Hammer" on AMD).
struct CpuidExtras {
  bool tsc_deadline = false;
  std::array<uint32_t, 12> brand{};  // eax, ebx, ecx, edx of 0x80000002, 0x80000003, 0x80000004; all 0: none
};

// The host's brand string as CPUID leaves 0x80000002-4 give it (all 0 when the CPU has none).
std::array<uint32_t, 12> host_brand_string();

std::vector<kvm_cpuid_entry2> normalize_cpuid(std::vector<kvm_cpuid_entry2> supported, unsigned cpu_index,
                                              unsigned cpu_count, const CpuidExtras& extras = {});

}  // namespace vessel::vmm::x86
