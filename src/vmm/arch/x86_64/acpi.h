// ACPI tables written by the VMM: RSDP, XSDT, FADT (hardware-reduced, with
// sleep control/status and reset registers), MADT (local APICs, IOAPIC,
// interrupt source override, LINT1 NMI) and a DSDT whose devices come from
// AcpiConfig, so virtio-mmio devices ("LNRO0005") slot in later, and
// optionally a VM generation ID device (VMGENID) with its notifier (GED).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.h"
#include "vmm/kvm/memory.h"

namespace vessel::vmm::x86 {

// A virtio-mmio device as the DSDT describes it.
struct AcpiMmioDevice {
  uint64_t base;
  uint32_t size;
  uint32_t irq;
};

struct AcpiConfig {
  unsigned cpu_count = 1;
  bool com1 = true;
  std::vector<AcpiMmioDevice> virtio_mmio;
  // A VMGENID device ("VM_Gen_Counter", its ADDR at kVmGenIdAddr) and the
  // Generic Event Device (ACPI0013, GSI kGedGsi) whose _EVT notifies it.
  bool vmgenid = false;
};

// The tables laid out for guest address `base` (the RSDP comes first).
struct AcpiTables {
  uint64_t base = 0;
  std::vector<uint8_t> blob;
  // Offsets of each table in the blob (for tests and debugging).
  size_t rsdp = 0, xsdt = 0, fadt = 0, madt = 0, dsdt = 0;
};

inline constexpr size_t kSdtHeaderSize = 36;
inline constexpr size_t kFadtSize = 276;

// FADT fields we fill (offsets from the start of the table).
namespace fadt {
inline constexpr size_t kDsdt = 40, kIapcBootArch = 109, kFlags = 112, kResetReg = 116, kResetValue = 128,
                        kMinorVersion = 131, kXDsdt = 140, kSleepControl = 244, kSleepStatus = 256,
                        kHypervisorId = 268;
inline constexpr uint32_t kFlagResetReg = 1u << 10, kFlagPowerButton = 1u << 4, kFlagSleepButton = 1u << 5,
                          kFlagHwReduced = 1u << 20;
}  // namespace fadt

// The DSDT's AML body (without the table header).
std::vector<uint8_t> build_dsdt_aml(const AcpiConfig& cfg);
AcpiTables build_acpi_tables(const AcpiConfig& cfg, uint64_t base);
// The 8-bit sum of `len` bytes (0 for a valid table).
uint8_t acpi_checksum(const uint8_t* p, size_t len);

// Builds the tables at kAcpiStart and writes them; returns the RSDP address.
Result<uint64_t> write_acpi_tables(GuestMemory& mem, const AcpiConfig& cfg);

}  // namespace vessel::vmm::x86
