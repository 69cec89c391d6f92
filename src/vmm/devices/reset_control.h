// ResetControl: the chipset's Reset Control Register at port 0xCF9 (PIIX/ICH),
// what Linux writes with reboot=pci (and as a late fallback): setting
// RST_CPU (bit 2) resets the machine; SYS_RST (bit 1, hard reset) is kept
// and read back, as on the PIIX.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>

#include "vmm/devices/bus.h"

namespace vessel::vmm {

class ResetControl : public BusDevice {
 public:
  static constexpr uint8_t kSysRst = 0x02, kRstCpu = 0x04;

  explicit ResetControl(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  std::mutex mu_;
  uint8_t value_ = 0;
  std::function<void()> on_reset_;
};

}  // namespace vessel::vmm
