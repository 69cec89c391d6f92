// Rtc: the CMOS real-time clock at ports 0x70 (index) / 0x71 (data).
//
// Time registers read the host clock (UTC) in BCD, 24-hour mode, or binary
// when the guest clears the DM bit of register B. Writes to the time
// registers are ignored (the guest clock cannot be set); other CMOS bytes
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
};

class Rtc : public BusDevice {
 public:
  using ClockFn = std::function<time_t()>;
  static constexpr uint8_t kRegA = 0x0a, kRegB = 0x0b, kRegC = 0x0c, kRegD = 0x0d, kCentury = 0x32;
  static constexpr uint8_t kRegBBinary = 0x04, kRegB24h = 0x02;

  // `clock` returns the current time in seconds since the epoch (tests fix it).
  explicit Rtc(ClockFn clock = nullptr);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  RtcState save() const;
  void restore(const RtcState& s);

 private:
  uint8_t read_cmos(uint8_t index) const;

  mutable std::mutex mu_;
  RtcState s_;
  ClockFn clock_;
};

}  // namespace vessel::vmm
