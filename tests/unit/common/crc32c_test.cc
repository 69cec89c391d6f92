// CRC-32C: the CPU's CRC32 instruction path (where the CPU has SSE 4.2)
// gives the tables' result for every length and alignment, and continues.
#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace vessel {
namespace {

TEST(Crc32c, FastPathMatchesTheTablesForEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::vector<uint8_t> buf(4096 + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 9; ++start)
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 64u, 1000u, 4096u}) {
      std::span<const uint8_t> s(buf.data() + start, len);
      EXPECT_EQ(crc32c(s), crc32c_portable(s)) << start << "+" << len;
      if (crc32c_has_instruction()) {
        EXPECT_EQ(crc32c_instruction(s), crc32c_portable(s)) << start << "+" << len;
        EXPECT_EQ(crc32c_instruction(s, 7), crc32c_portable(s, 7)) << start << "+" << len;
      }
      EXPECT_EQ(crc32c(s, 0x12345678), crc32c_portable(s, 0x12345678)) << start << "+" << len;
    }
  const char* v = "123456789";
  EXPECT_EQ(crc32c_portable(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v), 9)), 0xe3069283u);
}

}  // namespace
}  // namespace vessel
