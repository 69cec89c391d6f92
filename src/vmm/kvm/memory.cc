#include "vmm/kvm/memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <utility>

#include "common/strings.h"
#include "vmm/hex.h"

namespace vessel::vmm {

Result<GuestMemory> GuestMemory::create(uint64_t size, uint64_t hole_start, uint64_t hole_end) {
  const uint64_t page = 4096;
  if (size == 0 || size % page != 0) return Error::invalid(cat("guest memory size ", size, " is not a positive multiple of 4 KiB"));
  if (hole_start > hole_end || hole_start % page != 0) return Error::invalid("bad MMIO hole");
  GuestMemory m;
  int fd = ::memfd_create("vessel-guest-ram", MFD_CLOEXEC);
  if (fd < 0) return Error::from_errno("memfd_create guest RAM");
  m.fd_.reset(fd);
  if (::ftruncate(fd, static_cast<off_t>(size)) < 0) return Error::from_errno(cat("size guest RAM to ", size, " bytes"));
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) return Error::from_errno(cat("map ", size, " bytes of guest RAM"));
  ::madvise(p, size, MADV_MERGEABLE);
  m.base_ = static_cast<uint8_t*>(p);
  m.size_ = size;
  uint64_t low = size <= hole_start ? size : hole_start;
  m.regions_.push_back({0, low, 0, m.base_});
  if (size > low) m.regions_.push_back({hole_end, size - low, low, m.base_ + low});
  return m;
}

GuestMemory::GuestMemory(GuestMemory&& o) noexcept
    : fd_(std::move(o.fd_)), base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)),
      regions_(std::move(o.regions_)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& o) noexcept {
  if (this != &o) {
    if (base_) ::munmap(base_, size_);
    fd_ = std::move(o.fd_);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    regions_ = std::move(o.regions_);
  }
  return *this;
}

GuestMemory::~GuestMemory() {
  if (base_) ::munmap(base_, size_);
}

uint8_t* GuestMemory::host_ptr(uint64_t gpa, uint64_t len) const {
  for (const auto& r : regions_) {
    if (gpa >= r.guest_addr && gpa - r.guest_addr <= r.size && len <= r.size - (gpa - r.guest_addr))
      return r.host + (gpa - r.guest_addr);
  }
  return nullptr;
}

Status GuestMemory::write(uint64_t gpa, std::span<const uint8_t> data) {
  uint8_t* p = host_ptr(gpa, data.size());
  if (!p) return Error::invalid(cat("guest range ", hex(gpa), "+", data.size(), " is not RAM"));
  std::memcpy(p, data.data(), data.size());
  return ok();
}

Status GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
  const uint8_t* p = host_ptr(gpa, out.size());
  if (!p) return Error::invalid(cat("guest range ", hex(gpa), "+", out.size(), " is not RAM"));
  std::memcpy(out.data(), p, out.size());
  return ok();
}

Status GuestMemory::fill(uint64_t gpa, uint8_t value, uint64_t len) {
  uint8_t* p = host_ptr(gpa, len);
  if (!p) return Error::invalid(cat("guest range ", hex(gpa), "+", len, " is not RAM"));
  std::memset(p, value, len);
  return ok();
}

}  // namespace vessel::vmm
