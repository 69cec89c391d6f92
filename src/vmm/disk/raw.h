// RawDisk: an image file (or block device) used byte for byte.
#pragma once

#include "common/unique_fd.h"
#include "vmm/disk/disk.h"

namespace vessel::vmm::disk {

class RawDisk : public DiskImage {
 public:
  static Result<std::unique_ptr<RawDisk>> open(const std::string& path, bool readonly);
  // Takes an open fd (the qcow2 backing file, tests).
  RawDisk(UniqueFd fd, uint64_t size, bool readonly) : fd_(std::move(fd)), size_(size), readonly_(readonly) {}

  uint64_t size() const override { return size_; }
  bool readonly() const override { return readonly_; }
  Status read(uint64_t offset, std::span<uint8_t> out) override;
  Status write(uint64_t offset, std::span<const uint8_t> data) override;
  Status flush() override;
  Status discard(uint64_t offset, uint64_t len) override;
  Status write_zeroes(uint64_t offset, uint64_t len) override;

 private:
  UniqueFd fd_;
  uint64_t size_;
  bool readonly_;
};

// pread/pwrite of the whole span, retrying short transfers; reads past EOF give zeroes.
Status pread_full(int fd, uint64_t offset, std::span<uint8_t> out);
Status pwrite_full(int fd, uint64_t offset, std::span<const uint8_t> data);

}  // namespace vessel::vmm::disk
