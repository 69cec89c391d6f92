// SerialBuffer: COM1 output in batches, one write per line, nothing lost.
#include "vmm/serial_buffer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vessel::vmm {
namespace {

struct SinkRecorder {
  std::vector<std::string> writes;
  SerialBuffer::WriteFn fn() {
    return [this](std::span<const uint8_t> d) { writes.emplace_back(d.begin(), d.end()); };
  }
};

TEST(SerialBuffer, OneWritePerLine) {
  SinkRecorder r;
  SerialBuffer b(r.fn());
  EXPECT_TRUE(b.put('h'));  // the first byte of a pending batch: the owner schedules a flush
  EXPECT_FALSE(b.put('i'));
  EXPECT_TRUE(r.writes.empty());
  EXPECT_FALSE(b.put('\n'));  // a newline writes the line at once
  ASSERT_EQ(r.writes.size(), 1u);
  EXPECT_EQ(r.writes[0], "hi\n");
  for (char c : std::string("second line\n")) b.put(static_cast<uint8_t>(c));
  ASSERT_EQ(r.writes.size(), 2u);
  EXPECT_EQ(r.writes[1], "second line\n");
  EXPECT_EQ(b.batches(), 2u);
}

TEST(SerialBuffer, FlushWritesAPartialLineAndNothingWhenEmpty) {
  SinkRecorder r;
  SerialBuffer b(r.fn());
  for (char c : std::string("login: ")) b.put(static_cast<uint8_t>(c));
  EXPECT_TRUE(r.writes.empty());
  b.flush();
  ASSERT_EQ(r.writes.size(), 1u);
  EXPECT_EQ(r.writes[0], "login: ");
  b.flush();
  EXPECT_EQ(r.writes.size(), 1u);
  EXPECT_TRUE(b.put('x'));  // empty again: the next byte asks for a flush again
}

TEST(SerialBuffer, AFullBufferIsWrittenWithoutANewline) {
  SinkRecorder r;
  SerialBuffer b(r.fn());
  for (size_t i = 0; i < SerialBuffer::kCapacity + 10; ++i) b.put('a');
  ASSERT_EQ(r.writes.size(), 1u);
  EXPECT_EQ(r.writes[0].size(), SerialBuffer::kCapacity);
  b.flush();
  ASSERT_EQ(r.writes.size(), 2u);
  EXPECT_EQ(r.writes[1].size(), 10u);
}

}  // namespace
}  // namespace vessel::vmm
