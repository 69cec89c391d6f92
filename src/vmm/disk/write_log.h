// FileWriteLog: which chunks of an image file were written since they were
// last taken, so that a migration copying the file (`--copy-disks`) sends
// them again. The block device's worker marks (after each write to the
// file has completed), the migration's thread takes: both under one mutex.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace vessel::vmm::disk {

class FileWriteLog {
 public:
  // The granularity (the default qcow2 cluster size).
  static constexpr uint64_t kChunk = 64 * 1024;
  // Bytes [offset, offset + len) of the file changed.
  void mark(uint64_t offset, uint64_t len);
  // The changed chunks since the last take, one bit per chunk (bit i of word
  // i / 64 for bytes [i * kChunk, (i + 1) * kChunk)), and forgets them.
  std::vector<uint64_t> take();

 private:
  std::mutex mu_;
  std::vector<uint64_t> bits_;
};

}  // namespace vessel::vmm::disk
