// DiskImage: a virtual disk's storage format, behind one interface so the
// block device does not know whether it talks to a raw file or a qcow2
// overlay. Offsets and lengths are in bytes; callers bound them by size().
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/error.h"

namespace vessel::vmm::disk {

class DiskImage {
 public:
  virtual ~DiskImage() = default;
  // Virtual size in bytes.
  virtual uint64_t size() const = 0;
  virtual bool readonly() const = 0;
  virtual Status read(uint64_t offset, std::span<uint8_t> out) = 0;
  virtual Status write(uint64_t offset, std::span<const uint8_t> data) = 0;
  // Makes completed writes durable.
  virtual Status flush() = 0;
  // The guest no longer needs the range (may read back as anything; we give zeroes where we can).
  virtual Status discard(uint64_t offset, uint64_t len) = 0;
  // The range reads back as zeroes.
  virtual Status write_zeroes(uint64_t offset, uint64_t len) = 0;
};

// Opens an image, detecting qcow2 by its magic; anything else is raw.
Result<std::unique_ptr<DiskImage>> open_disk(const std::string& path, bool readonly);

}  // namespace vessel::vmm::disk
