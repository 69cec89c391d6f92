// Loading a Linux kernel into guest memory: a bzImage through the Linux
// x86 64-bit boot protocol, or an ELF (vmlinux or any PVH kernel) through
// the PVH entry named by its XEN_ELFNOTE_PHYS32_ENTRY note. Files are read
// with pread straight into guest RAM (no copy of the kernel in VMM memory).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/error.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/kvm/memory.h"

namespace vessel::vmm::x86 {

struct BootSources {
  int kernel_fd = -1;
  uint64_t kernel_size = 0;
  int initrd_fd = -1;  // -1: no initrd
  uint64_t initrd_size = 0;
  std::string cmdline;
  uint64_t rsdp_addr = 0;  // 0: no ACPI
};

// The code at the BIOS reset vector (F000:FFF0, physical kResetVectorAddr):
// there is no BIOS, so it resets the machine through the i8042 (0xFE to port
// 0x64). Linux's "reboot via BIOS" (machine_real_restart(), the default
// method after EFI on hardware-reduced ACPI) jumps there.
inline constexpr uint8_t kResetVectorCode[] = {
    0xfa,              // cli
    0xb0, 0xfe,        // mov al, 0xfe
    0xe6, 0x64,        // out 0x64, al
    0xf4,              // hlt
    0xeb, 0xfd,        // jmp back to the hlt
};
// Writes kResetVectorCode at kResetVectorAddr (in the reserved BIOS area).
Status write_reset_vector(GuestMemory& mem);

// Detects the kernel format and loads kernel, initrd and command line.
Result<BootEntry> load_kernel(GuestMemory& mem, const BootSources& src);

// Chooses where the initrd goes: as high as possible below `ram_top` and
// `addr_max` (the last usable byte), page aligned, above `kernel_end`.
Result<uint64_t> place_initrd(uint64_t size, uint64_t kernel_end, uint64_t ram_top, uint64_t addr_max);

// Reads exactly `len` bytes at `offset` of `fd` into guest memory at `gpa`.
Status pread_to_guest(GuestMemory& mem, int fd, uint64_t offset, uint64_t gpa, uint64_t len);
// Reads exactly out.size() bytes at `offset` of `fd`.
Status pread_exact(int fd, uint64_t offset, std::span<uint8_t> out);

// Loaders for each format (load_kernel picks one).
Result<BootEntry> load_bzimage(GuestMemory& mem, const BootSources& src, std::span<const uint8_t> head);
Result<BootEntry> load_pvh_elf(GuestMemory& mem, const BootSources& src);

}  // namespace vessel::vmm::x86
