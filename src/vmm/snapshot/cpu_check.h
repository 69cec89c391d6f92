// The host CPU check of a restore: every CPUID feature bit the snapshot's
// vCPUs were given must be one this host's KVM can give (else the guest
// would run instructions the CPU lacks and crash later, far from the cause).
#pragma once

#include <linux/kvm.h>

#include <span>

#include "common/error.h"

namespace vessel::vmm::snapshot {

// Compares the feature leaves (1, 7.0, 7.1, 0xd.1, 0x80000001, 0x80000007,
// 0x80000008) of `saved` with `supported` (KVM_GET_SUPPORTED_CPUID); bits KVM
// sets per vCPU (OSXSAVE, OSPKE, hypervisor, TSC deadline, APIC, HTT) are
// skipped. The error names the leaf, register, bit and, for common ones, the feature.
Status check_cpuid(std::span<const kvm_cpuid_entry2> saved, std::span<const kvm_cpuid_entry2> supported);

}  // namespace vessel::vmm::snapshot
