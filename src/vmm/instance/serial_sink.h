// SerialSink: where COM1 output of a detached VM goes, and `vm console`.
//
// Output (written on vCPU threads, never blocking them) goes to:
//   log        <state dir>/serial.log, rotated to serial.log.1 past
//              kSerialLogMax bytes (so at most twice that on disk); the
//              directory is held open, so the log follows it when `vm
//              upgrade` renames it (<id>.upgrade becomes <id>)
//   file:PATH  that file, as `vm run --serial file:PATH`
//   none       nowhere
// and, whatever the mode, to the attached console client if any (a
// non-blocking send: a client that does not read loses bytes, the guest
// never waits). The console's input is queued into the UART by the control
// loop (Vmm), which also accepts and drops console clients.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::vmm {

class SerialSink {
 public:
  // `mode`: log | none | file:PATH; the log mode writes `log_name` in the
  // directory `dir_fd` (duplicated: the caller keeps its fd).
  static Result<std::unique_ptr<SerialSink>> open(const std::string& mode, int dir_fd, const std::string& log_name);

  // One byte of COM1 output (vCPU thread).
  void put(uint8_t b);
  // Sets the console client (an invalid fd detaches it).
  void set_console(int fd);
  // Bytes the guest wrote to COM1.
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  SerialSink() = default;
  void rotate();

  std::mutex mu_;
  std::string mode_;
  std::string log_name_;  // in dir_ (log mode only)
  UniqueFd dir_;
  UniqueFd file_;
  uint64_t file_size_ = 0;
  int console_ = -1;
  std::atomic<uint64_t> bytes_{0};
};

// Checks a --serial value for a detached VMM (log, none or file:PATH).
Status check_detached_serial(const std::string& mode);

}  // namespace vessel::vmm
