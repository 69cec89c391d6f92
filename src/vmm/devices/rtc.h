// Rtc: the CMOS real-time clock at ports 0x70 (index) / 0x71 (data).
//
// Time registers read the host clock (UTC) in BCD, 24-hour mode, or binary
// when the guest sets the DM bit of register B. The guest sets the clock as on
// a real MC146818 (Linux's mc146818_set_time, hwclock): with the SET bit of
// register B up, time register writes go to a latched copy that reads back, and
// clearing SET starts the clock from it; a write without SET changes that field
// at once. The RTC then runs as an offset from the host clock (kept only while
// the VMM runs: snapshots save the CMOS bytes, not the offset). Other CMOS bytes
// are plain storage.
#pragma once

#include <array>
#include <cstdint>
#include <ctime>
#include <functional>
#include <mutex>

#include "vmm/devices/bus.h"

namespace vessel::vmm {

struct RtcState {
  uint8_t index = 0;
  std::array<uint8_t, 128> cmos{};
  int64_t offset = 0;  // seconds the guest's clock is ahead of the host's (guest writes)
};

class Rtc : public BusDevice {
 public:
  using ClockFn = std::function<time_t()>;
  static constexpr uint8_t kRegA = 0x0a, kRegB = 0x0b, kRegC = 0x0c, kRegD = 0x0d, kCentury = 0x32;
  static constexpr uint8_t kRegBBinary = 0x04, kRegB24h = 0x02, kRegBSet = 0x80;

  // `clock` returns the current time in seconds since the epoch (tests fix it).
  explicit Rtc(ClockFn clock = nullptr);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  RtcState save() const;
  void restore(const RtcState& s);

 private:
  uint8_t read_cmos(uint8_t index) const;
  // The current RTC time in register format into the time registers of s_.cmos.
  void latch_time();
  // Starts the clock from the time registers of s_.cmos (sets s_.offset).
  void commit_time();

  mutable std::mutex mu_;
  RtcState s_;
  ClockFn clock_;
};

}  // namespace vessel::vmm
