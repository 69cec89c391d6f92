#include "vmm/snapshot/cpu_check.h"

#include "common/strings.h"
#include "vmm/hex.h"

namespace vessel::vmm::snapshot {

namespace {
struct FeatureLeaf {
  uint32_t function;
  uint32_t index;
  bool indexed;
  // Bits of eax, ebx, ecx, edx that KVM or vessel set per vCPU: not host features.
  uint32_t ignore[4];
};

constexpr FeatureLeaf kLeaves[] = {
    // 1: ecx OSXSAVE(27) TSC-deadline(24) hypervisor(31); edx APIC(9) HTT(28); eax/ebx are not feature bits.
    {0x1, 0, false, {~0u, ~0u, (1u << 27) | (1u << 24) | (1u << 31), (1u << 9) | (1u << 28)}},
    {0x7, 0, true, {~0u, 0, 1u << 4 /* OSPKE */, 0}},
    {0x7, 1, true, {0, ~0u, ~0u, ~0u}},
    {0xd, 1, true, {0, ~0u, ~0u, ~0u}},
    {0x80000001, 0, false, {~0u, ~0u, 0, 0}},
    {0x80000007, 0, false, {~0u, ~0u, ~0u, 0}},
    {0x80000008, 0, false, {~0u, 0, ~0u, ~0u}},
};

// Names of a few features guests commonly depend on.
const char* feature_name(uint32_t fn, uint32_t idx, int reg, unsigned bit) {
  struct N {
    uint32_t fn, idx;
    int reg;
    unsigned bit;
    const char* name;
  };
  static constexpr N kNames[] = {
      {1, 0, 2, 0, "sse3"},      {1, 0, 2, 9, "ssse3"},   {1, 0, 2, 19, "sse4.1"}, {1, 0, 2, 20, "sse4.2"},
      {1, 0, 2, 23, "popcnt"},   {1, 0, 2, 25, "aes"},    {1, 0, 2, 26, "xsave"},  {1, 0, 2, 28, "avx"},
      {1, 0, 2, 30, "rdrand"},   {1, 0, 3, 25, "sse"},    {1, 0, 3, 26, "sse2"},   {7, 0, 1, 3, "bmi1"},
      {7, 0, 1, 5, "avx2"},      {7, 0, 1, 8, "bmi2"},    {7, 0, 1, 16, "avx512f"}, {7, 0, 1, 18, "rdseed"},
      {7, 0, 1, 29, "sha"},      {7, 0, 2, 1, "avx512vbmi"}, {0x80000001, 0, 2, 5, "lzcnt"},
      {0x80000001, 0, 3, 27, "rdtscp"}, {0x80000001, 0, 3, 26, "1GiB pages"},
  };
  for (const auto& n : kNames)
    if (n.fn == fn && n.idx == idx && n.reg == reg && n.bit == bit) return n.name;
  return nullptr;
}

const kvm_cpuid_entry2* find(std::span<const kvm_cpuid_entry2> t, uint32_t fn, uint32_t idx, bool indexed) {
  for (const auto& e : t)
    if (e.function == fn && (!indexed || e.index == idx)) return &e;
  return nullptr;
}
}  // namespace

Status check_cpuid(std::span<const kvm_cpuid_entry2> saved, std::span<const kvm_cpuid_entry2> supported) {
  static constexpr const char* kRegs[] = {"eax", "ebx", "ecx", "edx"};
  for (const auto& leaf : kLeaves) {
    const auto* s = find(saved, leaf.function, leaf.index, leaf.indexed);
    if (!s) continue;
    const auto* h = find(supported, leaf.function, leaf.index, leaf.indexed);
    uint32_t sv[4] = {s->eax, s->ebx, s->ecx, s->edx};
    uint32_t hv[4] = {0, 0, 0, 0};
    if (h) {
      hv[0] = h->eax;
      hv[1] = h->ebx;
      hv[2] = h->ecx;
      hv[3] = h->edx;
    }
    for (int r = 0; r < 4; ++r) {
      uint32_t missing = sv[r] & ~hv[r] & ~leaf.ignore[r];
      if (!missing) continue;
      unsigned bit = static_cast<unsigned>(__builtin_ctz(missing));
      const char* name = feature_name(leaf.function, leaf.index, r, bit);
      return Error::invalid(cat("this host's CPU lacks a feature the snapshot's vCPUs use: CPUID leaf ", hex(leaf.function),
                                leaf.indexed ? cat(".", leaf.index) : std::string(), " ", kRegs[r], " bit ", bit,
                                name ? cat(" (", name, ")") : std::string()));
    }
  }
  return ok();
}

}  // namespace vessel::vmm::snapshot
