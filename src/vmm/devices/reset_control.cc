#include "vmm/devices/reset_control.h"

namespace vessel::vmm {

void ResetControl::read(uint64_t, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  data[0] = value_;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void ResetControl::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset != 0) return;
  {
    std::lock_guard lock(mu_);
    if (!(data[0] & kRstCpu)) {
      value_ = data[0] & kSysRst;
      return;
    }
    value_ = 0;
  }
  if (on_reset_) on_reset_();
}

}  // namespace vessel::vmm
