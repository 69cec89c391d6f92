// Memory files of snapshots. A full one is guest RAM byte for byte with
// every all-zero 4 KiB page left as a hole (a sparse file: a 1 GiB guest
// that uses 60 MiB makes ~60 MiB on disk). A diff has the same size and
// holds only the pages listed in its state (the rest are holes too).
// Files are written under a temporary name and renamed into place, so a
// VM that maps the old file MAP_PRIVATE keeps its pages.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "vmm/kvm/memory.h"

namespace vessel::vmm::snapshot {

using Ranges = std::vector<std::pair<uint64_t, uint64_t>>;

// What a write did.
struct MemoryWriteStats {
  uint64_t scanned = 0;  // bytes looked at
  uint64_t written = 0;  // bytes of non-zero pages written
};

// Writes all of `mem` to `path` (sparse).
Result<MemoryWriteStats> write_full_memory(const GuestMemory& mem, const std::string& path);
// Writes the pages of `ranges` to `path` (sparse, the size of `mem`).
Result<MemoryWriteStats> write_diff_memory(const GuestMemory& mem, const Ranges& ranges, const std::string& path);
// Page ranges (byte offset, length) of the set bits of a page bitmap.
Ranges bitmap_ranges(const std::vector<uint64_t>& bits, uint64_t pages);

// Writes to `out_path` the base memory file with the diff's `ranges` taken
// from `diff_path` (zero pages become holes). `out_path` may be `base_path`.
Status merge_memory(const std::string& base_path, const std::string& diff_path, const Ranges& ranges, uint64_t size,
                    const std::string& out_path);

}  // namespace vessel::vmm::snapshot
