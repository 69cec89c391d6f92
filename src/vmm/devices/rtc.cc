#include "vmm/devices/rtc.h"

namespace vessel::vmm {

namespace {
uint8_t to_bcd(int v) { return static_cast<uint8_t>(((v / 10) << 4) | (v % 10)); }
}  // namespace

Rtc::Rtc(ClockFn clock) : clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::time(nullptr); };
  s_.cmos[kRegA] = 0x26;  // 32.768 kHz divider, 1024 Hz rate, UIP clear
  s_.cmos[kRegB] = kRegB24h;
  s_.cmos[kRegD] = 0x80;  // valid RAM and time
}

uint8_t Rtc::read_cmos(uint8_t index) const {
  int value;
  switch (index) {
    case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08: case 0x09: case kCentury: {
      time_t now = clock_();
      struct tm tm {};
      gmtime_r(&now, &tm);
      switch (index) {
        case 0x00: value = tm.tm_sec; break;
        case 0x02: value = tm.tm_min; break;
        case 0x04: value = tm.tm_hour; break;
        case 0x06: value = tm.tm_wday + 1; break;
        case 0x07: value = tm.tm_mday; break;
        case 0x08: value = tm.tm_mon + 1; break;
        case 0x09: value = tm.tm_year % 100; break;
        default: value = (tm.tm_year + 1900) / 100; break;
      }
      return (s_.cmos[kRegB] & kRegBBinary) ? static_cast<uint8_t>(value) : to_bcd(value);
    }
    case kRegC: return 0;  // no interrupt flags
    default: return s_.cmos[index];
  }
}

void Rtc::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  data[0] = offset == 1 ? read_cmos(s_.index) : 0xff;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void Rtc::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  if (offset == 0) {
    s_.index = data[0] & 0x7f;  // bit 7 is the NMI mask
    return;
  }
  if (offset != 1) return;
  switch (s_.index) {
    case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08: case 0x09: case kCentury:
    case kRegC: case kRegD:
      return;  // time and status registers are read-only here
    case kRegA: s_.cmos[kRegA] = data[0] & 0x7f; return;  // UIP is read-only
    default: s_.cmos[s_.index] = data[0];
  }
}

RtcState Rtc::save() const {
  std::lock_guard lock(mu_);
  return s_;
}

void Rtc::restore(const RtcState& s) {
  std::lock_guard lock(mu_);
  s_ = s;
  s_.index &= 0x7f;
}

}  // namespace vessel::vmm
