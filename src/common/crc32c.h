// CRC-32C (Castagnoli, the iSCSI / ext4 polynomial): a checksum for file
// formats whose readers must notice corruption (snapshot state files).
#pragma once

#include <cstdint>
#include <span>

namespace vessel {

// CRC-32C of `data`, continuing from `crc` (0 to start): the CPU's CRC32
// instruction (SSE 4.2) or crc32c_portable(), whichever ran faster on this
// CPU when first used (natively the instruction is ~3.5x the tables; under
// an emulator such as QEMU TCG, which runs it through a helper, the tables
// were 3x the instruction: 293 vs 100 MiB/s in the VM harness's L1).
uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc = 0);
// The same with tables (slicing by 8), on any CPU (tests compare the two).
uint32_t crc32c_portable(std::span<const uint8_t> data, uint32_t crc = 0);
// The same with the CRC32 instruction; only where crc32c_has_instruction().
uint32_t crc32c_instruction(std::span<const uint8_t> data, uint32_t crc = 0);
bool crc32c_has_instruction();
// Whether crc32c() uses the instruction (the choice made on first use).
bool crc32c_uses_instruction();

}  // namespace vessel
