// GuestMemory: guest RAM backed by one memfd (so it can later be snapshotted
// or shared), mapped once in the VMM and split into regions around the MMIO
// hole. Every access from the VMM or a device is bounds-checked here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::vmm {

// One contiguous range of guest-physical RAM.
struct MemoryRegion {
  uint64_t guest_addr;
  uint64_t size;
  uint64_t fd_offset;  // offset in the memfd, and in the host mapping
  uint8_t* host;
};

class GuestMemory {
 public:
  // RAM of `size` bytes (page multiple): [0, size) when it ends below
  // `hole_start`, else [0, hole_start) plus [hole_end, ...) for the rest.
  static Result<GuestMemory> create(uint64_t size, uint64_t hole_start, uint64_t hole_end);

  GuestMemory(GuestMemory&&) noexcept;
  GuestMemory& operator=(GuestMemory&&) noexcept;
  ~GuestMemory();

  const std::vector<MemoryRegion>& regions() const { return regions_; }
  uint64_t size() const { return size_; }
  int fd() const { return fd_.get(); }
  // End of the RAM that starts at 0 (below the hole).
  uint64_t low_end() const { return regions_.front().size; }

  // Host pointer for [gpa, gpa+len) when it lies in one region, else nullptr.
  uint8_t* host_ptr(uint64_t gpa, uint64_t len) const;
  bool contains(uint64_t gpa, uint64_t len) const { return host_ptr(gpa, len) != nullptr; }

  Status write(uint64_t gpa, std::span<const uint8_t> data);
  Status read(uint64_t gpa, std::span<uint8_t> out) const;
  Status fill(uint64_t gpa, uint8_t value, uint64_t len);
  template <class T>
  Status write_obj(uint64_t gpa, const T& v) {
    return write(gpa, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), sizeof v));
  }
  template <class T>
  Result<T> read_obj(uint64_t gpa) const {
    T v;
    TRY(read(gpa, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), sizeof v)));
    return v;
  }

 private:
  GuestMemory() = default;
  UniqueFd fd_;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  std::vector<MemoryRegion> regions_;
};

}  // namespace vessel::vmm
