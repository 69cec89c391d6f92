// GuestMemory: guest RAM backed by one shared memory file (so it can later be
// snapshotted or shared: an unlinked file on a huge-page tmpfs of its own where
// the VMM may mount one, else a memfd; "the memfd" below means either), by private anonymous memory that KSM may merge (mergeable), or by a snapshot's memory file mapped MAP_PRIVATE (pages load
// on demand, writes are copy-on-write), mapped once in the VMM and split into
// regions around the MMIO hole. Every access from the VMM or a device is
// bounds-checked here. The backing is linear: region offsets (fd_offset)
// are offsets in the memfd or memory file.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
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
  // `mergeable`: private anonymous memory marked MADV_MERGEABLE, so the
  // host's KSM (when an administrator runs it) may share identical pages
  // between guests; KSM cannot merge a shared memfd, so this has no fd.
  static Result<GuestMemory> create(uint64_t size, uint64_t hole_start, uint64_t hole_end, bool mergeable = false);
  // RAM laid out as create() does, a memfd in 4 KiB pages (MADV_NOHUGEPAGE):
  // for post-copy, whose holes must stay holes when punched one page at a
  // time (a huge page may be zeroed in place instead).
  static Result<GuestMemory> create_small_pages(uint64_t size, uint64_t hole_start, uint64_t hole_end);
  // RAM laid out as create() does, mapped MAP_PRIVATE from `fd` (a snapshot's
  // memory file of exactly `size` bytes: else an error naming both sizes).
  // With `prefault`, every page is read in now (MADV_POPULATE_READ, page
  // cache only: the pages stay shared until the guest writes them).
  static Result<GuestMemory> map_file(UniqueFd fd, uint64_t size, uint64_t hole_start, uint64_t hole_end,
                                      bool prefault);
  // RAM laid out as create() does over an existing guest-RAM memfd of
  // exactly `size` bytes, mapped MAP_SHARED: the same memory as the VMM that
  // made it (a local live migration hands it over instead of copying it).
  static Result<GuestMemory> adopt_memfd(UniqueFd fd, uint64_t size, uint64_t hole_start, uint64_t hole_end);
  static constexpr uint64_t kPageSize = 4096;

  GuestMemory(GuestMemory&&) noexcept;
  GuestMemory& operator=(GuestMemory&&) noexcept;
  ~GuestMemory();

  const std::vector<MemoryRegion>& regions() const { return regions_; }
  uint64_t size() const { return size_; }
  // The memfd or memory file; -1 for mergeable (anonymous) memory.
  int fd() const { return fd_.get(); }
  bool mergeable() const { return mergeable_; }
  // End of the RAM that starts at 0 (below the hole).
  uint64_t low_end() const { return regions_.front().size; }

  // Host pointer for [gpa, gpa+len) when it lies in one region, else nullptr.
  uint8_t* host_ptr(uint64_t gpa, uint64_t len) const;
  bool contains(uint64_t gpa, uint64_t len) const { return host_ptr(gpa, len) != nullptr; }

  Status write(uint64_t gpa, std::span<const uint8_t> data);
  Status read(uint64_t gpa, std::span<uint8_t> out) const;
  Status fill(uint64_t gpa, uint8_t value, uint64_t len);

  // The host address of offset `off` of the linear backing (no check: callers stay below size()).
  uint8_t* linear(uint64_t off) const { return base_ + off; }
  // Whether RAM is a private mapping of a memory file (a restored machine).
  bool file_backed() const { return file_backed_; }
  // Byte ranges (offset, length) of the linear backing that may hold
  // non-zero data, page aligned and sorted; the rest reads as zeroes. For a
  // memfd: its data extents. For a memory file: the file's data extents plus
  // the pages the guest changed (anonymous pages in /proc/self/pagemap).
  // For mergeable memory: the pages present or swapped (pagemap).
  Result<std::vector<std::pair<uint64_t, uint64_t>>> populated_ranges() const;

  // Dirty tracking of the VMM's own writes (devices, write()/fill()), which
  // KVM's dirty log does not see: one bit per page of the linear backing.
  void enable_dirty_tracking();
  bool dirty_tracking() const { return dirty_ != nullptr; }
  // Marks the pages of [gpa, gpa+len) written (a no-op without tracking).
  void mark_dirty(uint64_t gpa, uint64_t len) const;
  // Returns the bits set since the last call and clears them (empty without tracking).
  std::vector<uint64_t> take_dirty();
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
  bool file_backed_ = false;
  bool mergeable_ = false;
  std::unique_ptr<std::atomic<uint64_t>[]> dirty_;
  size_t dirty_words_ = 0;
};

}  // namespace vessel::vmm
