// Initial CPU state for booting x86-64 guests: GDT, identity page tables,
// segment/control registers for 16-bit real mode, 32-bit flat protected mode
// (PVH) and 64-bit long mode (Linux 64-bit boot protocol), FPU defaults, and
// a register dump for fatal exits. Builders are pure (testable without KVM);
// apply_entry() does the ioctls.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "vmm/kvm/kvm.h"
#include "vmm/kvm/memory.h"

namespace vessel::vmm::x86 {

// How the boot vCPU starts.
enum class EntryMode { kReal16, kProtected32, kLong64 };

struct BootEntry {
  EntryMode mode = EntryMode::kLong64;
  uint64_t ip = 0;   // rip (kReal16: offset from segment 0)
  uint64_t arg = 0;  // rsi for the Linux 64-bit entry (zero page), ebx for PVH (start_info)
  uint64_t sp = 0;   // 0: kBootStackTop
};

// Selectors of the boot GDT (Linux's __BOOT_CS / __BOOT_DS).
inline constexpr uint16_t kBootCs = 0x10, kBootDs = 0x18, kBootTss = 0x20;

// Packs a GDT descriptor; `flags` holds the access byte (bits 0-7) and the
// G/DB/L/AVL nibble (bits 12-15).
uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);
// The descriptor as KVM's hidden segment state.
kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector);
// The 5-entry boot GDT; code is 64-bit (long mode) or 32-bit (PVH).
std::array<uint64_t, 5> boot_gdt(bool code64);

// Writes PML4/PDPT/PD identity-mapping the first 4 GiB with 2 MiB pages.
Status write_identity_page_tables(GuestMemory& mem);

// Control and segment registers for each entry mode, starting from `base`
// (the vCPU's current sregs, so APIC base and the rest stay as KVM set them).
kvm_sregs real_mode_sregs(kvm_sregs base);
kvm_sregs protected32_sregs(kvm_sregs base);
kvm_sregs long_mode_sregs(kvm_sregs base);
kvm_regs entry_regs(const BootEntry& e);
kvm_fpu default_fpu();

// Writes the GDT/IDT (and page tables for long mode) and sets the vCPU's
// registers for `e`.
Status apply_entry(GuestMemory& mem, VcpuFd& vcpu, const BootEntry& e);

// "rip=0x... rsp=... cr0=..." for error reports.
std::string format_regs(const kvm_regs& r, const kvm_sregs& s);

}  // namespace vessel::vmm::x86
