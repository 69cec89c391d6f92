// SerialBuffer: batches COM1 output so that a line of guest console output
// costs one write(2) instead of one per byte. Bytes are appended on the vCPU
// thread that wrote THR; a newline or a full buffer writes the batch at once
// (on that thread, in order). A partial line (a prompt, echoed keys) waits
// until the owner's flush(): vm_runner's loop flushes it a few milliseconds
// after put() reported that the buffer became non-empty, and once more when
// the VM stops, so nothing the guest wrote before it stopped is lost.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

namespace vessel::vmm {

class SerialBuffer {
 public:
  using WriteFn = std::function<void(std::span<const uint8_t>)>;
  // A batch is written at the latest when it reaches this many bytes.
  static constexpr size_t kCapacity = 4096;

  explicit SerialBuffer(WriteFn write) : write_(std::move(write)) { buf_.reserve(kCapacity); }

  // Appends one byte; true when it is the first byte of a batch that is
  // still pending after the call (the caller should schedule a flush()).
  bool put(uint8_t b);
  // Writes what is pending.
  void flush();
  // Number of write(2)-level calls made so far (for tests and the benchmark).
  uint64_t batches() const;

 private:
  void write_locked();

  mutable std::mutex mu_;
  std::vector<uint8_t> buf_;
  uint64_t batches_ = 0;
  WriteFn write_;
};

}  // namespace vessel::vmm
