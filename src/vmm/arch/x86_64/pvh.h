// PVH boot structures (xen/include/public/arch-x86/hvm/start_info.h):
// the kernel is entered in 32-bit flat protected mode with ebx pointing at
// hvm_start_info, at the address of its XEN_ELFNOTE_PHYS32_ENTRY ELF note.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace vessel::vmm::x86 {

inline constexpr uint32_t kPvhMagic = 0x336ec578;
inline constexpr uint32_t kXenElfnotePhys32Entry = 18;

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct HvmMemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

// Scans the bytes of an ELF PT_NOTE segment for the "Xen" PHYS32_ENTRY note.
std::optional<uint64_t> find_pvh_entry(std::span<const uint8_t> notes);

}  // namespace vessel::vmm::x86
