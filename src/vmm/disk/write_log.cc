#include "vmm/disk/write_log.h"

namespace vessel::vmm::disk {

void FileWriteLog::mark(uint64_t offset, uint64_t len) {
  if (len == 0) return;
  uint64_t first = offset / kChunk;
  uint64_t last = (offset + len - 1) / kChunk;
  if (offset + len < offset) last = UINT64_MAX / kChunk;  // cannot happen for a file; kept in bounds anyway
  std::lock_guard lock(mu_);
  if (last / 64 >= bits_.size()) bits_.resize(last / 64 + 1, 0);
  for (uint64_t c = first; c <= last; ++c) bits_[c / 64] |= 1ULL << (c % 64);
}

std::vector<uint64_t> FileWriteLog::take() {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> out;
  out.swap(bits_);
  return out;
}

}  // namespace vessel::vmm::disk
