#include "vmm/arch/x86_64/e820.h"

#include "vmm/arch/x86_64/layout.h"

namespace vessel::vmm::x86 {

std::vector<E820Entry> build_e820(const GuestMemory& mem) {
  std::vector<E820Entry> map;
  uint64_t low_end = mem.low_end();
  map.push_back({0, kEbdaStart < low_end ? kEbdaStart : low_end, kE820Ram});
  if (low_end > kAcpiStart) map.push_back({kAcpiStart, kAcpiEnd - kAcpiStart, kE820Reserved});
  if (low_end > kHighMemStart) map.push_back({kHighMemStart, low_end - kHighMemStart, kE820Ram});
  for (size_t i = 1; i < mem.regions().size(); ++i)
    map.push_back({mem.regions()[i].guest_addr, mem.regions()[i].size, kE820Ram});
  return map;
}

}  // namespace vessel::vmm::x86
