// Guest physical memory layout of an x86-64 vessel VM: where the VMM puts the
// boot structures, the ACPI tables and the MMIO hole. One place, so the boot
// code, the ACPI builder and the tests agree.
#pragma once

#include <cstdint>

namespace vessel::vmm::x86 {

inline constexpr uint64_t kMiB = 1ULL << 20;
inline constexpr uint64_t kGiB = 1ULL << 30;

// Low memory: boot structures below 1 MiB.
inline constexpr uint64_t kGdtAddr = 0x500;           // GDT: null, null, code (0x10), data (0x18), TSS (0x20)
inline constexpr uint64_t kIdtAddr = 0x520;           // empty IDT (limit 0: any exception triple-faults)
inline constexpr uint64_t kPvhStartInfoAddr = 0x6000; // hvm_start_info
inline constexpr uint64_t kPvhModlistAddr = 0x6040;   // one hvm_modlist_entry (initrd)
inline constexpr uint64_t kPvhMemmapAddr = 0x6100;    // hvm_memmap_table_entry[] (max 128)
inline constexpr uint64_t kZeroPageAddr = 0x7000;     // Linux boot_params
inline constexpr uint64_t kBootStackTop = 0x8ff0;
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xa000;
inline constexpr uint64_t kPdAddr = 0xb000;           // 4 pages: identity map of 4 GiB in 2 MiB pages
inline constexpr uint64_t kIdentityMappedBytes = 4 * kGiB;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMax = 0x10000;      // bytes including the NUL
inline constexpr uint64_t kEbdaStart = 0x9fc00;       // end of usable low RAM in the e820 map
inline constexpr uint64_t kAcpiStart = 0xe0000;       // RSDP, then the other tables
inline constexpr uint64_t kAcpiEnd = 0x100000;
inline constexpr uint64_t kResetVectorAddr = 0xffff0;  // F000:FFF0: a reset stub (boot.h), the tables end before
// The VM generation ID (16 bytes, ACPI VMGENID) in the last page of the
// reserved ACPI area: the tables end before it, the guest maps it.
inline constexpr uint64_t kVmGenIdAddr = 0xff000;
inline constexpr uint64_t kHighMemStart = 0x100000;   // kernel load address (1 MiB)

// The MMIO hole below 4 GiB: guest RAM above kMmioHoleStart moves to 4 GiB.
inline constexpr uint64_t kMmioHoleStart = 3 * kGiB;
inline constexpr uint64_t kMmioHoleEnd = 4 * kGiB;
// virtio-mmio devices are placed from here, 4 KiB apart (Machine::add_virtio_device).
inline constexpr uint64_t kVirtioMmioStart = 0xd0000000;
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kLapicAddr = 0xfee00000;
// KVM's real-mode TSS (3 pages) and EPT identity map page, inside the hole.
inline constexpr uint64_t kTssAddr = 0xfffbd000;
inline constexpr uint64_t kIdentityMapAddr = 0xfffbc000;

// Port I/O of the platform devices.
inline constexpr uint16_t kCom1Port = 0x3f8;
inline constexpr uint32_t kCom1Irq = 4;
inline constexpr uint32_t kKeyboardIrq = 1;  // i8042 keyboard
inline constexpr uint16_t kRtcPort = 0x70;
inline constexpr uint16_t kI8042Port = 0x60;       // data; 0x64 is status/command
inline constexpr uint16_t kAcpiSleepPort = 0x600;  // sleep control; +1 sleep status; +2 _TTS transition
inline constexpr uint16_t kResetControlPort = 0xcf9;  // PIIX/ICH reset control register
// The first GSI given to virtio-mmio devices (Machine skips the legacy ones in use).
inline constexpr uint32_t kVirtioIrqStart = 5;
// The ACPI Generic Event Device's interrupt (edge): a pulse makes the guest
// run \_SB.GED0._EVT, which notifies the VMGENID device (a new generation).
inline constexpr uint32_t kGedGsi = 12;

}  // namespace vessel::vmm::x86
