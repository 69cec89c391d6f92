// The Linux x86 64-bit boot protocol for bzImage kernels.
#include <algorithm>
#include <cstring>

#include "common/strings.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/zero_page.h"
#include "vmm/hex.h"

namespace vessel::vmm::x86 {

namespace {
template <class T>
void put(ZeroPage& z, size_t off, T v) {
  std::memcpy(z.data() + off, &v, sizeof v);
}
}  // namespace

ZeroPage build_zero_page(const ZeroPageParams& p) {
  ZeroPage z{};
  size_t n = std::min(p.setup_header.size(), z.size() - zp::kSetupHeader);
  std::memcpy(z.data() + zp::kSetupHeader, p.setup_header.data(), n);
  put<uint8_t>(z, zp::kTypeOfLoader, 0xff);  // undefined boot loader
  put<uint32_t>(z, zp::kCmdLinePtr, static_cast<uint32_t>(p.cmdline_addr));
  put<uint32_t>(z, zp::kExtCmdLinePtr, static_cast<uint32_t>(p.cmdline_addr >> 32));
  put<uint32_t>(z, zp::kRamdiskImage, static_cast<uint32_t>(p.initrd_addr));
  put<uint32_t>(z, zp::kRamdiskSize, static_cast<uint32_t>(p.initrd_size));
  put<uint32_t>(z, zp::kExtRamdiskImage, static_cast<uint32_t>(p.initrd_addr >> 32));
  put<uint32_t>(z, zp::kExtRamdiskSize, static_cast<uint32_t>(p.initrd_size >> 32));
  put<uint64_t>(z, zp::kAcpiRsdpAddr, p.rsdp_addr);
  size_t count = std::min(p.e820.size(), zp::kE820Max);
  put<uint8_t>(z, zp::kE820Entries, static_cast<uint8_t>(count));
  std::memcpy(z.data() + zp::kE820Table, p.e820.data(), count * sizeof(E820Entry));
  return z;
}

Result<BootEntry> load_bzimage(GuestMemory& mem, const BootSources& src, std::span<const uint8_t> head) {
  uint16_t version = zp_get<uint16_t>(head, zp::kVersion);
  if (version < 0x020c)
    return Error::invalid(cat("boot protocol ", hex(version), " is too old (need 2.12 for the 64-bit entry)"));
  if (!(zp_get<uint16_t>(head, zp::kXLoadFlags) & zp::kXlfKernel64))
    return Error::invalid("the kernel has no 64-bit entry point (XLF_KERNEL_64 unset)");
  if (!(zp_get<uint8_t>(head, zp::kLoadFlags) & zp::kLoadedHigh))
    return Error::invalid("the kernel cannot be loaded at 1 MiB (LOADED_HIGH unset)");

  uint64_t setup_sects = zp_get<uint8_t>(head, zp::kSetupHeader);
  if (setup_sects == 0) setup_sects = 4;
  uint64_t setup_bytes = (setup_sects + 1) * 512;
  if (setup_bytes >= src.kernel_size) return Error::invalid("the setup code covers the whole file");
  uint64_t payload = src.kernel_size - setup_bytes;
  uint64_t init_size = zp_get<uint32_t>(head, zp::kInitSize);
  uint64_t pref = zp_get<uint64_t>(head, zp::kPrefAddress);
  uint64_t kernel_end = std::max(kHighMemStart + std::max(payload, init_size), pref + init_size);
  if (kernel_end > mem.low_end())
    return Error::invalid(cat("guest memory of ", mem.size() >> 20, " MiB is too small: the kernel needs ",
                              (kernel_end + kMiB - 1) >> 20, " MiB below ", hex(mem.low_end())));
  TRYC(pread_to_guest(mem, src.kernel_fd, setup_bytes, kHighMemStart, payload), "load the protected-mode kernel");

  uint64_t cmdline_max = zp_get<uint32_t>(head, zp::kCmdlineSize) + 1;  // cmdline_size excludes the NUL
  cmdline_max = std::min(cmdline_max, kCmdlineMax);
  if (src.cmdline.size() + 1 > cmdline_max)
    return Error::invalid(cat("command line of ", src.cmdline.size(), " bytes is longer than the kernel's limit of ",
                              cmdline_max - 1));
  TRY(mem.fill(kCmdlineAddr, 0, src.cmdline.size() + 1));
  TRY(mem.write(kCmdlineAddr, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(src.cmdline.data()),
                                                       src.cmdline.size())));

  ZeroPageParams zpp;
  size_t header_end = std::min<size_t>(head.size(), 0x202 + zp_get<uint8_t>(head, zp::kJump + 1));
  zpp.setup_header = head.subspan(zp::kSetupHeader, header_end - zp::kSetupHeader);
  zpp.cmdline_addr = kCmdlineAddr;
  zpp.rsdp_addr = src.rsdp_addr;
  zpp.e820 = build_e820(mem);
  if (src.initrd_fd >= 0) {
    uint64_t addr_max = zp_get<uint32_t>(head, zp::kInitrdAddrMax);
    uint64_t at = TRYC(place_initrd(src.initrd_size, kernel_end, mem.low_end(), addr_max), "initrd");
    TRYC(pread_to_guest(mem, src.initrd_fd, 0, at, src.initrd_size), "load initrd");
    zpp.initrd_addr = at;
    zpp.initrd_size = src.initrd_size;
  }
  ZeroPage z = build_zero_page(zpp);
  TRY(mem.write(kZeroPageAddr, z));

  BootEntry e;
  e.mode = EntryMode::kLong64;
  e.ip = kHighMemStart + 0x200;  // startup_64
  e.arg = kZeroPageAddr;
  return e;
}

}  // namespace vessel::vmm::x86
