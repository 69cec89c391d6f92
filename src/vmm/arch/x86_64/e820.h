// The guest's physical memory map (e820 types), shared by the Linux zero
// page and the PVH start_info memmap.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/kvm/memory.h"

namespace vessel::vmm::x86 {

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

#pragma pack(push, 1)
// The 20-byte boot_params e820 entry.
struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};
#pragma pack(pop)
static_assert(sizeof(E820Entry) == 20);

// RAM below the EBDA, the ACPI area reserved, RAM from 1 MiB to the hole,
// and RAM above 4 GiB when the guest has that much.
std::vector<E820Entry> build_e820(const GuestMemory& mem);

}  // namespace vessel::vmm::x86
