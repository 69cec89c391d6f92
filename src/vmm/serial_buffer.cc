#include "vmm/serial_buffer.h"

namespace vessel::vmm {

void SerialBuffer::write_locked() {
  if (buf_.empty()) return;
  if (write_) write_(std::span<const uint8_t>(buf_.data(), buf_.size()));
  ++batches_;
  buf_.clear();
}

bool SerialBuffer::put(uint8_t b) {
  std::lock_guard lock(mu_);
  bool first = buf_.empty();
  buf_.push_back(b);
  if (b == '\n' || buf_.size() >= kCapacity) {
    write_locked();
    return false;
  }
  return first;
}

void SerialBuffer::flush() {
  std::lock_guard lock(mu_);
  write_locked();
}

uint64_t SerialBuffer::batches() const {
  std::lock_guard lock(mu_);
  return batches_;
}

}  // namespace vessel::vmm
