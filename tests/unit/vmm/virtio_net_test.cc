// virtio-net over a datagram socketpair standing in for the tap.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "virtio_test_ring.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/net/net.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {
namespace {

using testing::TestRing;

struct NetTest : ::testing::Test {
  GuestMemory mem = testing::make_memory(4 << 20);
  int peer = -1;
  NetDevice* dev = nullptr;
  std::unique_ptr<MmioTransport> t;
  // Separate rings for rx (queue 0) and tx (queue 1).
  TestRing rx{mem, 16};
  TestRing tx{mem, 16};
  int irqs = 0;

  void SetUp() override {
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, sv), 0);
    peer = sv[1];
    NetOptions o;
    o.mac = {0x52, 0x54, 0, 1, 2, 3};
    o.mac_set = true;
    auto d = NetDevice::create(UniqueFd(sv[0]), o, nullptr);
    ASSERT_TRUE(d.ok());
    dev = d->release();
    t = std::make_unique<MmioTransport>(std::unique_ptr<VirtioDevice>(dev), mem);
    t->set_irq([this] { ++irqs; });
    MmioState s = t->save();
    s.status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
    s.driver_features = bit(kFVersion1) | bit(netdev::kFMac);
    for (int q = 0; q < 2; ++q) {
      const uint64_t base = q * 0x100000;
      s.queues[q].size = 16;
      s.queues[q].ready = true;
      s.queues[q].desc_table = TestRing::kDesc + base;
      s.queues[q].avail_ring = TestRing::kAvail + base;
      s.queues[q].used_ring = TestRing::kUsed + base;
    }
    ASSERT_TRUE(t->restore(s));
  }
  void TearDown() override { ::close(peer); }
  // Ring helpers at the per-queue offset.
  void desc(int q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags) {
    ASSERT_TRUE(mem.write_obj(TestRing::kDesc + q * 0x100000 + 16ULL * i, Descriptor{addr, len, flags, 0}));
  }
  void publish(int q, uint16_t idx, uint16_t head) {
    const uint64_t a = TestRing::kAvail + q * 0x100000;
    ASSERT_TRUE(mem.write_obj<uint16_t>(a + 4 + 2ULL * (idx % 16), head));
    ASSERT_TRUE(mem.write_obj<uint16_t>(a + 2, static_cast<uint16_t>(idx + 1)));
  }
  uint16_t used_idx(int q) { return *mem.read_obj<uint16_t>(TestRing::kUsed + q * 0x100000 + 2); }
  uint32_t used_len(int q, uint16_t i) { return *mem.read_obj<uint32_t>(TestRing::kUsed + q * 0x100000 + 8 + 8ULL * i); }
};

TEST_F(NetTest, ConfigHasTheMac) {
  uint8_t mac[6];
  t->read(mmio::kConfig, mac);
  EXPECT_EQ(mac[0], 0x52);
  EXPECT_EQ(mac[5], 3);
  EXPECT_TRUE(dev->device_features() & bit(netdev::kFMac));
  EXPECT_FALSE(dev->device_features() & bit(netdev::kFCsum));  // no tap, no offload
}

TEST_F(NetTest, TransmitsFramesToTheTap) {
  uint8_t frame[12 + 60];
  std::memset(frame, 0, 12);
  for (int i = 0; i < 60; ++i) frame[12 + i] = static_cast<uint8_t>(i);
  ASSERT_TRUE(mem.write(0x300000, frame));
  desc(1, 0, 0x300000, sizeof frame, 0);
  publish(1, 0, 0);
  t->handle_notify(1);
  uint8_t got[200];
  ASSERT_EQ(::recv(peer, got, sizeof got, 0), static_cast<ssize_t>(sizeof frame));
  EXPECT_EQ(got[12 + 59], 59);
  EXPECT_EQ(used_idx(1), 1);
  EXPECT_GE(irqs, 1);
}

TEST_F(NetTest, ReceivesFramesWhenBuffersArrive) {
  uint8_t frame[12 + 100] = {};
  frame[12] = 0xee;
  ASSERT_EQ(::send(peer, frame, sizeof frame, 0), static_cast<ssize_t>(sizeof frame));
  // No receive buffer yet: the frame waits.
  t->handle_event(dev->event_fds()[0]);
  EXPECT_EQ(used_idx(0), 0);
  desc(0, 0, 0x300000, 2048, kDescFWrite);
  publish(0, 0, 0);
  t->handle_notify(0);
  EXPECT_EQ(used_idx(0), 1);
  EXPECT_EQ(used_len(0, 0), sizeof frame);
  EXPECT_EQ(*mem.read_obj<uint8_t>(0x300000 + 12), 0xee);
  EXPECT_EQ(*mem.read_obj<uint16_t>(0x300000 + 10), 1);  // num_buffers
}

TEST_F(NetTest, FrameTooBigForTheBufferIsDropped) {
  uint8_t frame[12 + 1000] = {};
  ASSERT_EQ(::send(peer, frame, sizeof frame, 0), static_cast<ssize_t>(sizeof frame));
  desc(0, 0, 0x300000, 100, kDescFWrite);
  publish(0, 0, 0);
  t->handle_notify(0);
  EXPECT_EQ(used_idx(0), 1);
  EXPECT_EQ(used_len(0, 0), 0u);
}

TEST_F(NetTest, StateRoundTrip) {
  NetState s = dev->save();
  NetState other{{2, 0, 0, 0, 0, 9}};
  dev->restore(other);
  EXPECT_EQ(dev->mac()[5], 9);
  dev->restore(s);
  EXPECT_EQ(dev->mac()[5], 3);
}

}  // namespace
}  // namespace vessel::vmm::virtio
