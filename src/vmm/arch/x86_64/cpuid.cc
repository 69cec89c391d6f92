#include "vmm/arch/x86_64/cpuid.h"

#include <cpuid.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace vessel::vmm::x86 {

namespace {
unsigned bits_for(unsigned n) {
  unsigned b = 0;
  while ((1u << b) < n) ++b;
  return b;
}
constexpr uint32_t kBrandFirst = 0x80000002, kBrandLast = 0x80000004;

bool any(const std::array<uint32_t, 12>& a) {
  return std::any_of(a.begin(), a.end(), [](uint32_t v) { return v != 0; });
}

// Leaf e (one of 0x80000002-4) from the brand string's registers.
void set_brand_leaf(kvm_cpuid_entry2& e, const std::array<uint32_t, 12>& brand) {
  const uint32_t* r = &brand[(e.function - kBrandFirst) * 4];
  e.eax = r[0], e.ebx = r[1], e.ecx = r[2], e.edx = r[3];
}
}  // namespace

std::array<uint32_t, 12> host_brand_string() {
  std::array<uint32_t, 12> b{};
  if (__get_cpuid_max(0x80000000, nullptr) < kBrandLast) return b;
  for (uint32_t fn = kBrandFirst; fn <= kBrandLast; ++fn) {
    uint32_t* r = &b[(fn - kBrandFirst) * 4];
    __cpuid(fn, r[0], r[1], r[2], r[3]);
  }
  return b;
}

std::vector<kvm_cpuid_entry2> normalize_cpuid(std::vector<kvm_cpuid_entry2> cpuid, unsigned index, unsigned count,
                                              const CpuidExtras& extras) {
  const uint32_t apic_id = index;
  bool has_hv_leaf = false;
  bool brand_leaf[3] = {};
  uint32_t max_extended = 0;
  for (auto& e : cpuid) {
    switch (e.function) {
      case 0x1:
        e.ebx = (apic_id << 24) | (count << 16) | (8 << 8) | (e.ebx & 0xff);  // APIC id, logical count, CLFLUSH 64 B
        e.ecx |= 1u << 31;                                                    // running on a hypervisor
        if (extras.tsc_deadline) e.ecx |= 1u << 24;
        if (count > 1) e.edx |= 1u << 28;                                     // HTT: the count field is valid
        else e.edx &= ~(1u << 28);
        break;
      case 0x4: {  // deterministic cache parameters (Intel)
        uint32_t level = (e.eax >> 5) & 0x7;
        uint32_t sharing = level >= 3 ? count - 1 : 0;
        uint32_t cores = count > 64 ? 63 : count - 1;  // EAX[31:26] has 6 bits: at most 64 cores
        e.eax = (e.eax & 0x3fff) | ((sharing & 0xfff) << 14) | (cores << 26);
        break;
      }
      case 0xb:
      case 0x1f: {  // extended topology: SMT level (1 thread), core level (count cores)
        e.edx = apic_id;
        if (e.index == 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (1u << 8) | 0;
        } else if (e.index == 1) {
          e.eax = bits_for(count);
          e.ebx = count;
          e.ecx = (2u << 8) | 1;
        } else {
          e.eax = e.ebx = 0;
          e.ecx = e.index;
        }
        break;
      }
      case 0x40000000:
        has_hv_leaf = true;
        if (e.eax < 0x40000001) e.eax = 0x40000001;
        std::memcpy(&e.ebx, "KVMK", 4);
        std::memcpy(&e.ecx, "VMKV", 4);
        std::memcpy(&e.edx, "M\0\0\0", 4);
        break;
      case 0x80000000:
        max_extended = e.eax;
        break;
      case kBrandFirst:
      case kBrandFirst + 1:
      case kBrandLast:
        if (any(extras.brand)) set_brand_leaf(e, extras.brand);
        brand_leaf[e.function - kBrandFirst] = true;
        break;
      case 0x80000008:  // AMD: number of cores - 1
        e.ecx = (e.ecx & ~0xffu & ~0xf000u) | (count - 1) | (bits_for(count) << 12);
        break;
      case 0x8000001e:  // AMD: extended APIC id, one thread per core
        e.eax = apic_id;
        e.ebx = (e.ebx & 0xffffff00u) | apic_id;
        e.ebx &= ~0xff00u;
        e.ecx = 0;
        break;
      default: break;
    }
  }
  if (any(extras.brand) && max_extended >= kBrandLast) {
    for (uint32_t fn = kBrandFirst; fn <= kBrandLast; ++fn) {
      if (brand_leaf[fn - kBrandFirst]) continue;
      kvm_cpuid_entry2 e{};
      e.function = fn;
      set_brand_leaf(e, extras.brand);
      cpuid.push_back(e);
    }
  }
  if (!has_hv_leaf) {
    kvm_cpuid_entry2 e{};
    e.function = 0x40000000;
    e.eax = 0x40000001;
    std::memcpy(&e.ebx, "KVMK", 4);
    std::memcpy(&e.ecx, "VMKV", 4);
    std::memcpy(&e.edx, "M\0\0\0", 4);
    cpuid.push_back(e);
  }
  return cpuid;
}

}  // namespace vessel::vmm::x86
