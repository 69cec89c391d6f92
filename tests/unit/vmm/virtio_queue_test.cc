// The split virtqueue against hand-built rings, well formed and malformed.
#include <gtest/gtest.h>

#include "virtio_test_ring.h"
#include "vmm/virtio/device.h"

namespace vessel::vmm::virtio {
namespace {

using testing::TestRing;

struct QueueTest : ::testing::Test {
  GuestMemory mem = testing::make_memory();
  TestRing ring{mem, 16};
  Queue q{256};

  void SetUp() override {
    ring.setup(q);
    ASSERT_TRUE(q.activate(mem));
  }
  // Pops expecting an error.
  void expect_bad() {
    auto r = q.pop(mem);
    EXPECT_FALSE(r.ok());
  }
};

TEST_F(QueueTest, EmptyQueuePopsNothing) {
  auto r = q.pop(mem);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(QueueTest, PopsAChainAndReturnsIt) {
  ring.desc(0, TestRing::kData, 16, kDescFNext, 1);
  ring.desc(1, TestRing::kData + 0x100, 512, kDescFNext | kDescFWrite, 2);
  ring.desc(2, TestRing::kData + 0x400, 1, kDescFWrite);
  ring.publish(0);
  auto r = q.pop(mem);
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_TRUE(r->has_value());
  const DescriptorChain& c = **r;
  EXPECT_EQ(c.head, 0);
  ASSERT_EQ(c.segments.size(), 3u);
  EXPECT_EQ(c.readable_bytes, 16u);
  EXPECT_EQ(c.writable_bytes, 513u);
  EXPECT_EQ(c.segments[1].host, mem.host_ptr(TestRing::kData + 0x100, 1));
  ASSERT_TRUE(q.add_used(c.head, 513));
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0), std::make_pair(0u, 513u));
  auto again = q.pop(mem);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
}

TEST_F(QueueTest, CopiesAcrossSegments) {
  ring.desc(0, TestRing::kData, 3, kDescFNext, 1);
  ring.desc(1, TestRing::kData + 0x100, 5, kDescFNext, 2);
  ring.desc(2, TestRing::kData + 0x200, 4, kDescFWrite, 0);
  ASSERT_TRUE(mem.write(TestRing::kData, std::span<const uint8_t>((const uint8_t*)"abc", 3)));
  ASSERT_TRUE(mem.write(TestRing::kData + 0x100, std::span<const uint8_t>((const uint8_t*)"defgh", 5)));
  ring.publish(0);
  auto c = **q.pop(mem);
  uint8_t buf[6];
  EXPECT_EQ(copy_from_chain(c, 1, buf), 6u);
  EXPECT_EQ(std::string((char*)buf, 6), "bcdefg");
  const uint8_t w[6] = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(copy_to_chain(c, 0, w), 4u);  // only 4 writable bytes
  EXPECT_EQ(*mem.read_obj<uint32_t>(TestRing::kData + 0x200), 0x04030201u);
}

TEST_F(QueueTest, LoopIsRejected) {
  ring.desc(0, TestRing::kData, 8, kDescFNext, 1);
  ring.desc(1, TestRing::kData, 8, kDescFNext, 0);
  ring.publish(0);
  expect_bad();
}

TEST_F(QueueTest, SelfLoopIsRejected) {
  ring.desc(3, TestRing::kData, 8, kDescFNext, 3);
  ring.publish(3);
  expect_bad();
}

TEST_F(QueueTest, NextOutOfRangeIsRejected) {
  ring.desc(0, TestRing::kData, 8, kDescFNext, 16);  // queue size is 16
  ring.publish(0);
  expect_bad();
}

TEST_F(QueueTest, HeadOutOfRangeIsRejected) {
  ring.publish(200);
  expect_bad();
}

TEST_F(QueueTest, BufferOutsideRamIsRejected) {
  ring.desc(0, (1 << 20) - 4, 8);  // straddles the end of RAM
  ring.publish(0);
  expect_bad();
  TestRing r2 = ring;
  (void)r2;
}

TEST_F(QueueTest, HugeAddressAndLengthOverflowAreRejected) {
  ring.desc(0, ~0ULL - 2, 16);
  ring.publish(0);
  expect_bad();
}

TEST_F(QueueTest, OversizedLengthIsRejected) {
  ring.desc(0, TestRing::kData, 0xffffffffu);
  ring.publish(0);
  expect_bad();
}

TEST_F(QueueTest, AvailIndexJumpIsRejected) {
  ring.desc(0, TestRing::kData, 8);
  ring.set_avail_idx(17);  // more than the queue size ahead
  expect_bad();
}

TEST_F(QueueTest, ReadableAfterWritableIsRejected) {
  ring.desc(0, TestRing::kData, 8, kDescFNext | kDescFWrite, 1);
  ring.desc(1, TestRing::kData, 8, 0);
  ring.publish(0);
  expect_bad();
}

TEST_F(QueueTest, IndirectTableIsFollowed) {
  const uint64_t table = 0x8000;
  ring.desc(0, TestRing::kData, 16, kDescFNext, 1, table);
  ring.desc(1, TestRing::kData + 0x100, 100, kDescFWrite, 0, table);
  ring.desc(5, table, 32, kDescFIndirect);
  ring.publish(5);
  auto r = q.pop(mem);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ((*r)->head, 5);
  EXPECT_EQ((*r)->segments.size(), 2u);
  EXPECT_EQ((*r)->writable_bytes, 100u);
}

TEST_F(QueueTest, IndirectInsideIndirectIsRejected) {
  const uint64_t table = 0x8000;
  ring.desc(0, 0x9000, 16, kDescFIndirect, 0, table);
  ring.desc(0, TestRing::kData, 16, 0, 0, 0x9000);
  ring.desc(2, table, 16, kDescFIndirect);
  ring.publish(2);
  expect_bad();
}

TEST_F(QueueTest, IndirectTableMustBeWellFormed) {
  ring.desc(0, 0x8000, 24, kDescFIndirect);  // not a multiple of 16
  ring.publish(0);
  expect_bad();
}

TEST_F(QueueTest, IndirectTableOutsideRamIsRejected) {
  ring.desc(0, (1 << 20) - 16, 32, kDescFIndirect);
  ring.publish(0);
  expect_bad();
}

TEST_F(QueueTest, IndirectLoopAndBadNextAreRejected) {
  const uint64_t table = 0x8000;
  ring.desc(0, TestRing::kData, 8, kDescFNext, 1, table);
  ring.desc(1, TestRing::kData, 8, kDescFNext, 0, table);
  ring.desc(0, table, 32, kDescFIndirect);
  ring.publish(0);
  expect_bad();
  ring.desc(1, TestRing::kData, 8, kDescFNext, 2, table);  // 2 is past the 2-entry table
  ring.desc(1, table, 32, kDescFIndirect);
  ring.publish(1);
  Queue q2{256};
  ring.setup(q2);
  ASSERT_TRUE(q2.activate(mem));
  q2.state().next_avail = 1;
  EXPECT_FALSE(q2.pop(mem).ok());
}

TEST_F(QueueTest, IndirectWithoutFeatureIsRejected) {
  q.state().indirect = false;
  ring.desc(0, 0x8000, 16, kDescFIndirect);
  ring.desc(0, TestRing::kData, 16, 0, 0, 0x8000);
  ring.publish(0);
  expect_bad();
}

TEST(QueueActivate, BadSetupIsRejected) {
  GuestMemory mem = testing::make_memory();
  TestRing ring(mem, 16);
  Queue q(256);
  ring.setup(q);
  q.state().size = 12;  // not a power of two
  EXPECT_FALSE(q.activate(mem).ok());
  q.state().size = 512;  // above max
  EXPECT_FALSE(q.activate(mem).ok());
  q.state().size = 16;
  q.state().used_ring = (1 << 20) - 8;  // outside RAM
  EXPECT_FALSE(q.activate(mem).ok());
  q.state().used_ring = TestRing::kUsed + 2;  // misaligned
  EXPECT_FALSE(q.activate(mem).ok());
  q.state().used_ring = TestRing::kUsed;
  EXPECT_TRUE(q.activate(mem).ok());
}

TEST(QueueEventIdx, InterruptOnlyWhenUsedEventIsPassed) {
  GuestMemory mem = testing::make_memory();
  TestRing ring(mem, 16);
  Queue q(256);
  ring.setup(q, /*event_idx=*/true);
  ASSERT_TRUE(q.activate(mem));
  for (uint16_t i = 0; i < 4; ++i) ring.desc(i, TestRing::kData, 8, kDescFWrite);
  ring.set_used_event(2);  // interrupt me when used idx passes 2
  for (uint16_t i = 0; i < 4; ++i) ring.publish(i);
  auto pop_use = [&] {
    auto c = q.pop(mem);
    ASSERT_TRUE(c.ok() && c->has_value());
    ASSERT_TRUE(q.add_used((*c)->head, 8));
  };
  pop_use();
  EXPECT_TRUE(q.needs_interrupt());  // the first one always signals
  pop_use();
  EXPECT_FALSE(q.needs_interrupt());  // used idx 2: event 2 not yet passed
  pop_use();
  EXPECT_TRUE(q.needs_interrupt());  // used idx 3 passed event 2
  // enable_notification publishes avail_event and reports pending chains.
  EXPECT_TRUE(q.enable_notification());
  EXPECT_EQ(ring.avail_event(), 3);
  pop_use();
  EXPECT_FALSE(q.enable_notification());
  EXPECT_EQ(ring.avail_event(), 4);
}

TEST(QueueNoEventIdx, NoInterruptFlagIsHonoured) {
  GuestMemory mem = testing::make_memory();
  TestRing ring(mem, 16);
  Queue q(256);
  ring.setup(q);
  ASSERT_TRUE(q.activate(mem));
  ASSERT_TRUE(q.add_used(0, 0));
  EXPECT_TRUE(q.needs_interrupt());
  ring.set_avail_flags(1);
  EXPECT_FALSE(q.needs_interrupt());
}

TEST(QueueState, SaveAndRestoreKeepsPositions) {
  GuestMemory mem = testing::make_memory();
  TestRing ring(mem, 16);
  Queue q(256);
  ring.setup(q);
  ASSERT_TRUE(q.activate(mem));
  ring.desc(0, TestRing::kData, 8);
  ring.publish(0);
  ring.publish(0);
  ASSERT_TRUE(q.pop(mem)->has_value());
  QueueState saved = q.state();
  Queue q2(256);
  q2.state() = saved;
  ASSERT_TRUE(q2.activate(mem));
  EXPECT_EQ(q2.state().next_avail, 1);
  EXPECT_EQ(q2.pending(), 1);
  EXPECT_TRUE(q2.pop(mem)->has_value());
}

}  // namespace
}  // namespace vessel::vmm::virtio
