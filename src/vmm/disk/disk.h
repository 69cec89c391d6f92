// DiskImage: a virtual disk's storage format, behind one interface so the
// block device does not know whether it talks to a raw file or a qcow2
// overlay. Offsets and lengths are in bytes; callers bound them by size().
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "common/error.h"
#include "vmm/disk/write_log.h"

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

  // From now on every change of the image's file (data and, for qcow2, its
  // metadata, at file offsets) is marked in `log` once done; nullptr: no more.
  void set_write_log(std::shared_ptr<FileWriteLog> log) {
    std::lock_guard lock(log_mu_);
    log_ = std::move(log);
  }

 protected:
  // Bytes [offset, offset + len) of the file changed.
  void note_write(uint64_t offset, uint64_t len) {
    std::lock_guard lock(log_mu_);
    if (log_) log_->mark(offset, len);
  }

 private:
  std::mutex log_mu_;
  std::shared_ptr<FileWriteLog> log_;
};

// Opens an image, detecting qcow2 by its magic; anything else is raw.
Result<std::unique_ptr<DiskImage>> open_disk(const std::string& path, bool readonly);

}  // namespace vessel::vmm::disk
