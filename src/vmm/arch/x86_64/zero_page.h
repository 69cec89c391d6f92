// The Linux "zero page" (struct boot_params, 4 KiB): offsets from the x86
// boot protocol (Documentation/arch/x86/boot.rst) and a pure builder.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "vmm/arch/x86_64/e820.h"

namespace vessel::vmm::x86 {

namespace zp {
inline constexpr size_t kAcpiRsdpAddr = 0x070;
inline constexpr size_t kExtRamdiskImage = 0x0c0;
inline constexpr size_t kExtRamdiskSize = 0x0c4;
inline constexpr size_t kExtCmdLinePtr = 0x0c8;
inline constexpr size_t kE820Entries = 0x1e8;
inline constexpr size_t kSetupHeader = 0x1f1;  // setup_sects: the setup header starts here
inline constexpr size_t kBootFlag = 0x1fe;
inline constexpr size_t kJump = 0x200;
inline constexpr size_t kHeaderMagic = 0x202;  // "HdrS"
inline constexpr size_t kVersion = 0x206;
inline constexpr size_t kTypeOfLoader = 0x210;
inline constexpr size_t kLoadFlags = 0x211;
inline constexpr size_t kCode32Start = 0x214;
inline constexpr size_t kRamdiskImage = 0x218;
inline constexpr size_t kRamdiskSize = 0x21c;
inline constexpr size_t kCmdLinePtr = 0x228;
inline constexpr size_t kInitrdAddrMax = 0x22c;
inline constexpr size_t kKernelAlignment = 0x230;
inline constexpr size_t kRelocatable = 0x234;
inline constexpr size_t kXLoadFlags = 0x236;
inline constexpr size_t kCmdlineSize = 0x238;
inline constexpr size_t kPrefAddress = 0x258;
inline constexpr size_t kInitSize = 0x260;
inline constexpr size_t kE820Table = 0x2d0;
inline constexpr size_t kE820Max = 128;

inline constexpr uint8_t kLoadedHigh = 0x01;
inline constexpr uint16_t kXlfKernel64 = 0x01;
}  // namespace zp

struct ZeroPageParams {
  std::span<const uint8_t> setup_header;  // the kernel's bytes from 0x1f1 to the end of its header
  uint64_t cmdline_addr = 0;
  uint64_t initrd_addr = 0;
  uint64_t initrd_size = 0;
  uint64_t rsdp_addr = 0;
  std::vector<E820Entry> e820;
};

using ZeroPage = std::array<uint8_t, 4096>;

ZeroPage build_zero_page(const ZeroPageParams& p);

template <class T>
T zp_get(std::span<const uint8_t> page, size_t off) {
  T v{};
  if (off + sizeof(T) <= page.size()) __builtin_memcpy(&v, page.data() + off, sizeof(T));
  return v;
}

}  // namespace vessel::vmm::x86
