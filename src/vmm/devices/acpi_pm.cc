#include "vmm/devices/acpi_pm.h"

namespace vessel::vmm {

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  data[0] = offset == kSleepStatus ? s_.status : offset == kTransition ? s_.transition : 0;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool off = false;
  {
    std::lock_guard lock(mu_);
    if (offset == kSleepStatus) {
      s_.status &= static_cast<uint8_t>(~data[0]);  // write 1 to clear
    } else if (offset == kTransition) {
      s_.transition = data[0];
    } else if (offset == kSleepControl && (data[0] & kSlpEn) &&
               ((data[0] & kSlpTypMask) >> kSlpTypShift) == kS5Type) {
      off = true;
    }
  }
  if (off && on_poweroff_) on_poweroff_();
}

bool AcpiPm::s5_announced() const {
  std::lock_guard lock(mu_);
  return s_.transition == kS5Type;
}

AcpiPmState AcpiPm::save() const {
  std::lock_guard lock(mu_);
  return s_;
}

void AcpiPm::restore(const AcpiPmState& s) {
  std::lock_guard lock(mu_);
  s_ = s;
}

}  // namespace vessel::vmm
