// Bus: routes guest port I/O or MMIO accesses to devices by address range.
//
// A device sees only offsets inside its own range and byte spans, never KVM,
// so devices are unit-tested without /dev/kvm. Ranges are fixed before the
// vCPUs start; lookups allocate nothing. Devices do their own locking (a vCPU
// thread and the console input can touch the same device).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"

namespace vessel::vmm {

// A device on a bus: `offset` is relative to the start of its range.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
 public:
  // Adds `dev` (not owned) at [base, base+len); refuses empty or overlapping ranges.
  Status insert(BusDevice* dev, uint64_t base, uint64_t len, std::string name);
  // Dispatches an access; false when no device covers the whole access
  // (then reads are filled with 0xff and writes dropped).
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

  struct Entry {
    uint64_t base;
    uint64_t len;
    BusDevice* dev;
    std::string name;
  };
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  const Entry* find(uint64_t addr, uint64_t len) const;
  std::vector<Entry> entries_;  // sorted by base, non-overlapping
};

}  // namespace vessel::vmm
