// CRC-32C (Castagnoli, the iSCSI / ext4 polynomial): a checksum for file
// formats whose readers must notice corruption (snapshot state files).
#pragma once

#include <cstdint>
#include <span>

namespace vessel {

// CRC-32C of `data`, continuing from `crc` (0 to start): the CPU's CRC32
// instruction where it has SSE 4.2, else crc32c_portable().
uint32_t crc32c(std::span<const uint8_t> data, uint32_t crc = 0);
// The same with tables (slicing by 8), on any CPU (tests compare the two).
uint32_t crc32c_portable(std::span<const uint8_t> data, uint32_t crc = 0);

}  // namespace vessel
