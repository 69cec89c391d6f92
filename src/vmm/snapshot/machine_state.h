// Reading and setting the state of a paused Machine: vCPUs (through KVM),
// the in-kernel irqchip, PIT and clock, and the devices' *State structs.
#pragma once

#include "common/error.h"
#include "vmm/machine.h"
#include "vmm/snapshot/state.h"

namespace vessel::vmm::snapshot {

// The MSRs a vCPU can save and set back, read on `vcpu` (whose CPUID leaf
// 0x40000001 EAX is `kvm_features`): KVM_GET_MSR_INDEX_LIST filtered to those
// msr_restorable() keeps and KVM_GET_MSRS reads on it, with their values (TSC
// first, TSC deadline last, the order they are set back in).
Result<std::vector<kvm_msr_entry>> read_saveable_msrs(const Kvm& kvm, VcpuFd& vcpu, uint32_t kvm_features, bool lapic);

// Whether MSR `index` belongs in a vCPU's saved state, for a guest whose CPUID
// leaf 0x40000001 EAX has `kvm_features` (KVM_FEATURE_* bits) and with or
// without an in-kernel LAPIC. KVM reads some MSRs it refuses to write back:
// its paravirtual MSRs when the guest's CPUID lacks their feature, and the
// LAPIC's (async PF interrupt, PV EOI, TSC deadline) without an in-kernel
// LAPIC (KVM_SET_MSRS fails on MSR_KVM_ASYNC_PF_INT even for 0). Hyper-V's
// MSRs are left out too: vessel's CPUID does not offer Hyper-V.
bool msr_restorable(uint32_t index, uint32_t kvm_features, bool lapic);

// Whether special registers `r` are ones an x86 CPU can be in (the checks of
// KVM_SET_SREGS on the modes: long mode needs CR4.PAE and EFER.LMA with
// EFER.LME and CR0.PG, a 64-bit CS needs long mode, paging needs protected
// mode, CR0.NW needs CR0.CD): an error naming the broken rule and the
// registers otherwise. KVM on real hardware never reports such a set; nested
// SVM under QEMU's TCG (the VM harness) has, now and then, put its host's
// CR0, CR3 and CS in a guest's save area (seen as cr0=0x80050033 and a 64-bit
// CS with the guest's EFER and CR4 of 0), and a snapshot or migration of it
// could never be restored: both refuse it when they capture it.
Status check_sregs(const kvm_sregs& r);

// What capture_vcpu() need not read: the MSRs to read (none: the saveable
// ones, found and read in the same calls, read_saveable_msrs()), the
// vCPU's CPUID (null: read) and TSC frequency (0: read).
struct KnownVcpu {
  std::span<const uint32_t> msrs;
  const std::vector<kvm_cpuid_entry2>* cpuid = nullptr;
  uint32_t tsc_khz = 0;
};
// One vCPU's state, in the order KVM needs (MP state first: reading it may
// update the LAPIC; events last).
Result<VcpuState> capture_vcpu(const Kvm& kvm, VcpuFd& vcpu, const KnownVcpu& known, size_t xsave_size, bool lapic);
// Sets it back on a vCPU that has not run (CPUID first, events last).
Status apply_vcpu(VcpuFd& vcpu, const VcpuState& s);

// Reads the machine's Machine::VcpuConstants, before its vCPUs first run
// (a vCPU ioctl waits while the vCPU is in KVM_RUN): the VMM does at start,
// so that a capture reads only what changes.
Status learn_vcpu_constants(Machine& m);

// The machine's vCPUs, VM-wide KVM state and devices (the machine must be
// paused). What Machine::vcpu_constants() holds is not read again; what it
// lacks is read and kept there.
Status capture_machine(Machine& m, SnapshotState& out);
// Sets all of it on a machine made by create_restored() over the snapshot's
// memory, and its Machine::vcpu_constants() from the state.
Status apply_machine(Machine& m, const SnapshotState& s);

}  // namespace vessel::vmm::snapshot
