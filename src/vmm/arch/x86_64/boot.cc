#include "vmm/arch/x86_64/boot.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/strings.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/hex.h"

namespace vessel::vmm::x86 {

Status pread_exact(int fd, uint64_t offset, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("read");
    }
    if (n == 0) return Error::invalid(cat("file ends at ", offset + done, ", expected ", out.size() - done, " more bytes"));
    done += static_cast<size_t>(n);
  }
  return ok();
}

Status pread_to_guest(GuestMemory& mem, int fd, uint64_t offset, uint64_t gpa, uint64_t len) {
  uint8_t* p = mem.host_ptr(gpa, len);
  if (!p) return Error::invalid(cat("guest range ", hex(gpa), "+", hex(len), " is not RAM"));
  return pread_exact(fd, offset, std::span<uint8_t>(p, len));
}

Result<uint64_t> place_initrd(uint64_t size, uint64_t kernel_end, uint64_t ram_top, uint64_t addr_max) {
  uint64_t top = std::min(ram_top, addr_max + 1);
  if (size > top) return Error::invalid(cat("initrd of ", size, " bytes does not fit below ", hex(top)));
  uint64_t addr = (top - size) & ~0xfffULL;
  if (addr < kernel_end)
    return Error::invalid(cat("initrd of ", size, " bytes does not fit in guest memory between the kernel (ends at ",
                              hex(kernel_end), ") and ", hex(top)));
  return addr;
}

Status write_reset_vector(GuestMemory& mem) {
  static_assert(kResetVectorAddr + sizeof kResetVectorCode <= kAcpiEnd);
  TRYC(mem.write(kResetVectorAddr, std::span<const uint8_t>(kResetVectorCode, sizeof kResetVectorCode)),
       "write the reset vector");
  return ok();
}

Result<BootEntry> load_kernel(GuestMemory& mem, const BootSources& src) {
  uint8_t head[1024] = {};
  if (src.kernel_size < 64) return Error::invalid("kernel: file too small to be a kernel");
  size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof head, src.kernel_size));
  TRYC(pread_exact(src.kernel_fd, 0, std::span<uint8_t>(head, n)), "kernel");
  if (std::memcmp(head, "\x7f" "ELF", 4) == 0) return TRYC(load_pvh_elf(mem, src), "kernel (ELF)");
  if (n >= 0x206 && std::memcmp(head + 0x202, "HdrS", 4) == 0)
    return TRYC(load_bzimage(mem, src, std::span<const uint8_t>(head, n)), "kernel (bzImage)");
  return Error::invalid("kernel: not a Linux kernel (neither a bzImage nor an ELF with a PVH entry)");
}

}  // namespace vessel::vmm::x86
