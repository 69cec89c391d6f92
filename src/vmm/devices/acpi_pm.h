// AcpiPm: the hardware-reduced ACPI sleep control (offset 0) and sleep
// status (offset 1) registers named in the FADT. Writing SLP_EN with
// SLP_TYP 5 (the \_S5_ value in the DSDT) powers the machine off; the
// FADT reset register points at the i8042, not here.
// Offset 2 is vessel's transition register: the DSDT's \_TTS method (which
// the OS runs before it shuts down or restarts: Linux's reboot notifier
// calls _TTS(5)) writes the target sleep state there, so a triple fault
// that follows an announced S5 is told apart from a crash.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

#include "vmm/devices/bus.h"

namespace vessel::vmm {

struct AcpiPmState {
  uint8_t status = 0;
  // The sleep state last announced through \_TTS (0: working).
  uint8_t transition = 0;
};

class AcpiPm : public BusDevice {
 public:
  static constexpr uint8_t kSlpEn = 0x20;
  static constexpr uint8_t kSlpTypShift = 2, kSlpTypMask = 0x1c;
  static constexpr uint8_t kS5Type = 5;
  static constexpr uint8_t kWakStatus = 0x80;
  // Register offsets (the device spans kRegisterCount ports).
  static constexpr uint64_t kSleepControl = 0, kSleepStatus = 1, kTransition = 2, kRegisterCount = 3;
  // The byte a guest writes to power off: SLP_EN | (5 << 2).
  static constexpr uint8_t kPoweroffValue = kSlpEn | (kS5Type << kSlpTypShift);

  explicit AcpiPm(std::function<void()> on_poweroff) : on_poweroff_(std::move(on_poweroff)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // True once the guest announced S5 (shutdown or restart) through \_TTS
  // and has not announced the working state since.
  bool s5_announced() const;

  AcpiPmState save() const;
  void restore(const AcpiPmState& s);

 private:
  mutable std::mutex mu_;
  AcpiPmState s_;
  std::function<void()> on_poweroff_;
};

}  // namespace vessel::vmm
