// CPUID for a vCPU: KVM_GET_SUPPORTED_CPUID normalised to the VM's topology
// (one thread per core, `cpu_count` cores in one socket), the vCPU's APIC id,
// the hypervisor bit and the KVM signature leaf 0x40000000.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace vessel::vmm::x86 {

std::vector<kvm_cpuid_entry2> normalize_cpuid(std::vector<kvm_cpuid_entry2> supported, unsigned cpu_index,
                                              unsigned cpu_count);

}  // namespace vessel::vmm::x86
