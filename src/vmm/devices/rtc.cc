#include "vmm/devices/rtc.h"

namespace vessel::vmm {

namespace {
uint8_t to_bcd(int v) { return static_cast<uint8_t>(((v / 10) << 4) | (v % 10)); }
int from_bcd(uint8_t v) { return (v >> 4) * 10 + (v & 0x0f); }
bool is_time_register(uint8_t index) {
  switch (index) {
    case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08: case 0x09: case Rtc::kCentury: return true;
    default: return false;
  }
}
}  // namespace

Rtc::Rtc(ClockFn clock) : clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::time(nullptr); };
  s_.cmos[kRegA] = 0x26;  // 32.768 kHz divider, 1024 Hz rate, UIP clear
  s_.cmos[kRegB] = kRegB24h;
  s_.cmos[kRegD] = 0x80;  // valid RAM and time
}

uint8_t Rtc::read_cmos(uint8_t index) const {
  int value;
  if (is_time_register(index) && (s_.cmos[kRegB] & kRegBSet)) return s_.cmos[index];  // latched while SET
  switch (index) {
    case 0x00: case 0x02: case 0x04: case 0x06: case 0x07: case 0x08: case 0x09: case kCentury: {
      time_t now = static_cast<time_t>(clock_() + s_.offset);
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
      if (s_.cmos[kRegB] & kRegBSet) {
        s_.cmos[s_.index] = data[0];  // latched; the clock starts from it when SET drops
      } else {
        latch_time();
        s_.cmos[s_.index] = data[0];
        commit_time();
      }
      return;
    case kRegC: case kRegD:
      return;  // status registers are read-only
    case kRegA: s_.cmos[kRegA] = data[0] & 0x7f; return;  // UIP is read-only
    case kRegB: {
      bool was_set = s_.cmos[kRegB] & kRegBSet, set = data[0] & kRegBSet;
      if (set && !was_set) latch_time();  // the registers hold the time the guest edits
      s_.cmos[kRegB] = data[0];
      if (was_set && !set) commit_time();
      return;
    }
    default: s_.cmos[s_.index] = data[0];
  }
}

void Rtc::latch_time() {
  uint8_t b = s_.cmos[kRegB];
  s_.cmos[kRegB] = static_cast<uint8_t>(b & ~kRegBSet);
  static constexpr uint8_t kTimeRegs[] = {0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, kCentury};
  for (uint8_t i : kTimeRegs) s_.cmos[i] = read_cmos(i);
  s_.cmos[kRegB] = b;
}

void Rtc::commit_time() {
  bool binary = s_.cmos[kRegB] & kRegBBinary;
  auto field = [&](uint8_t i) { return binary ? int{s_.cmos[i]} : from_bcd(s_.cmos[i]); };
  struct tm tm {};
  tm.tm_sec = field(0x00);
  tm.tm_min = field(0x02);
  tm.tm_hour = field(0x04) & 0x3f;  // 24-hour mode (bit 7 is PM only in 12-hour mode)
  tm.tm_mday = field(0x07);
  tm.tm_mon = field(0x08) - 1;
  tm.tm_year = field(kCentury) * 100 + field(0x09) - 1900;
  time_t t = timegm(&tm);
  if (t == static_cast<time_t>(-1)) return;  // an impossible date: the clock keeps its time
  s_.offset = static_cast<int64_t>(t) - static_cast<int64_t>(clock_());
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
