// The virtio-mmio register interface: identification, feature negotiation,
// status transitions, queue setup, notification, DEVICE_NEEDS_RESET, and
// save/restore of the transport state.
#include <gtest/gtest.h>

#include "virtio_test_ring.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {
namespace {

using testing::TestRing;

// A device that returns every chain with its writable length.
struct EchoDevice : VirtioDevice {
  int activations = 0, resets = 0;
  uint32_t device_type() const override { return 42; }
  uint64_t device_features() const override { return bit(3) | bit(40); }
  std::vector<uint16_t> queue_max_sizes() const override { return {64, 32}; }
  void read_config(uint64_t offset, std::span<uint8_t> d) const override {
    for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<uint8_t>(offset + i);
  }
  Status activate(DeviceHost&) override {
    ++activations;
    return ok();
  }
  Status process_queue(DeviceHost& host, unsigned index) override {
    Queue& q = host.queue(index);
    bool used = false;
    while (auto c = TRY(q.pop(host.memory()))) {
      TRY(q.add_used(c->head, static_cast<uint32_t>(c->writable_bytes)));
      used = true;
    }
    if (used) host.notify_used(index);  // as the real devices do
    return ok();
  }
  void reset() override { ++resets; }
};

struct MmioTest : ::testing::Test {
  GuestMemory mem = testing::make_memory();
  EchoDevice* dev = new EchoDevice;
  MmioTransport t{std::unique_ptr<VirtioDevice>(dev), mem};
  int irqs = 0;

  void SetUp() override { t.set_irq([this] { ++irqs; }); }
  uint32_t rd(uint64_t off) {
    uint32_t v = 0;
    t.read(off, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
    return v;
  }
  testing::MmioDriver driver{t};
  void wr(uint64_t off, uint32_t v) { driver.wr(off, v); }
  void negotiate(uint64_t features) { driver.negotiate(features); }
  void setup_queue(unsigned index, const TestRing& r) { driver.setup_queue(index, r); }
  static constexpr uint32_t kAll = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
};

TEST_F(MmioTest, IdentifiesAsVersion2) {
  EXPECT_EQ(rd(mmio::kMagic), mmio::kMagicValue);
  EXPECT_EQ(rd(mmio::kVersion), 2u);
  EXPECT_EQ(rd(mmio::kDeviceId), 42u);
  wr(mmio::kQueueSel, 1);
  EXPECT_EQ(rd(mmio::kQueueNumMax), 32u);
  wr(mmio::kQueueSel, 2);
  EXPECT_EQ(rd(mmio::kQueueNumMax), 0u);  // no such queue
  uint8_t cfg[4];
  t.read(mmio::kConfig + 2, cfg);
  EXPECT_EQ(cfg[0], 2);
  EXPECT_EQ(cfg[3], 5);
}

TEST_F(MmioTest, OffersTransportFeatures) {
  wr(mmio::kDeviceFeaturesSel, 0);
  uint32_t lo = rd(mmio::kDeviceFeatures);
  wr(mmio::kDeviceFeaturesSel, 1);
  uint32_t hi = rd(mmio::kDeviceFeatures);
  uint64_t f = uint64_t{hi} << 32 | lo;
  EXPECT_TRUE(f & bit(kFVersion1));
  EXPECT_TRUE(f & bit(kFEventIdx));
  EXPECT_TRUE(f & bit(kFIndirectDesc));
  EXPECT_TRUE(f & bit(3));
  EXPECT_TRUE(f & bit(40));
}

TEST_F(MmioTest, FeaturesOkNeedsVersion1AndASubset) {
  negotiate(bit(3));  // no VERSION_1
  EXPECT_FALSE(rd(mmio::kStatus) & kStatusFeaturesOk);
  wr(mmio::kStatus, 0);
  negotiate(bit(kFVersion1) | bit(5));  // 5 was not offered
  EXPECT_FALSE(rd(mmio::kStatus) & kStatusFeaturesOk);
  wr(mmio::kStatus, 0);
  negotiate(bit(kFVersion1) | bit(3) | bit(kFEventIdx));
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusFeaturesOk);
  EXPECT_EQ(t.acked_features(), bit(kFVersion1) | bit(3) | bit(kFEventIdx));
  // Features are frozen after FEATURES_OK.
  wr(mmio::kDriverFeaturesSel, 0);
  wr(mmio::kDriverFeatures, 0);
  EXPECT_EQ(t.acked_features(), bit(kFVersion1) | bit(3) | bit(kFEventIdx));
}

TEST_F(MmioTest, StatusStepsMustBeInOrder) {
  wr(mmio::kStatus, kStatusDriver);  // DRIVER without ACKNOWLEDGE
  EXPECT_EQ(rd(mmio::kStatus), 0u);
  wr(mmio::kStatus, kStatusAcknowledge);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusDriverOk);  // DRIVER_OK before FEATURES_OK
  EXPECT_EQ(rd(mmio::kStatus), kStatusAcknowledge);
  wr(mmio::kStatus, kStatusDriver);  // clearing a bit is not allowed
  EXPECT_EQ(rd(mmio::kStatus), kStatusAcknowledge);
  EXPECT_EQ(dev->activations, 0);
  wr(mmio::kStatus, kStatusAcknowledge | kStatusNeedsReset);  // the device's bit
  EXPECT_EQ(rd(mmio::kStatus), kStatusAcknowledge);
}

TEST_F(MmioTest, QueueSetupActivatesAndNotifyProcesses) {
  TestRing ring(mem, 16);
  negotiate(bit(kFVersion1));
  setup_queue(0, ring);
  wr(mmio::kStatus, kAll);
  EXPECT_EQ(rd(mmio::kStatus), kAll);
  EXPECT_EQ(dev->activations, 1);
  // Queue registers are frozen after DRIVER_OK.
  wr(mmio::kQueueNum, 8);
  EXPECT_EQ(t.queue(0).state().size, 16);

  ring.desc(0, TestRing::kData, 100, kDescFWrite);
  ring.publish(0);
  wr(mmio::kQueueNotify, 0);
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).second, 100u);
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(rd(mmio::kInterruptStatus), kInterruptUsedBuffer);
  wr(mmio::kInterruptAck, kInterruptUsedBuffer);
  EXPECT_EQ(rd(mmio::kInterruptStatus), 0u);
}

TEST_F(MmioTest, BuffersMadeAvailableBeforeDriverOkAreTakenAtActivation) {
  TestRing ring(mem, 16);
  negotiate(bit(kFVersion1));
  setup_queue(0, ring);
  // As Linux's balloon does with its statistics queue during probe.
  ring.desc(0, TestRing::kData, 100, kDescFWrite);
  ring.publish(0);
  wr(mmio::kQueueNotify, 0);
  EXPECT_EQ(ring.used_idx(), 0) << "no device work before DRIVER_OK";
  wr(mmio::kStatus, kAll);
  EXPECT_EQ(ring.used_idx(), 1) << "the early buffer is taken when the device goes live";
  EXPECT_EQ(ring.used(0).second, 100u);
}

TEST_F(MmioTest, BadRingsAtDriverOkNeedReset) {
  TestRing ring(mem, 16);
  negotiate(bit(kFVersion1));
  wr(mmio::kQueueSel, 0);
  wr(mmio::kQueueNum, 16);
  wr(mmio::kQueueDescLow, 0xfff00000);  // outside 1 MiB of RAM
  wr(mmio::kQueueReady, 1);
  wr(mmio::kStatus, kAll);
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);
  EXPECT_EQ(rd(mmio::kInterruptStatus), kInterruptConfigChange);
  EXPECT_EQ(irqs, 1);
}

TEST_F(MmioTest, MalformedChainNeedsResetAndResetRecovers) {
  TestRing ring(mem, 16);
  negotiate(bit(kFVersion1));
  setup_queue(0, ring);
  wr(mmio::kStatus, kAll);
  ring.desc(0, TestRing::kData, 8, kDescFNext, 0);  // loop
  ring.publish(0);
  wr(mmio::kQueueNotify, 0);
  EXPECT_TRUE(rd(mmio::kStatus) & kStatusNeedsReset);
  EXPECT_TRUE(rd(mmio::kInterruptStatus) & kInterruptConfigChange);
  // Further notifications are ignored until the driver resets.
  wr(mmio::kQueueNotify, 0);
  wr(mmio::kStatus, 0);
  EXPECT_EQ(rd(mmio::kStatus), 0u);
  EXPECT_EQ(dev->resets, 1);
  EXPECT_FALSE(t.queue(0).state().ready);
}

TEST_F(MmioTest, NarrowAndUnalignedAccessesAreHarmless) {
  uint8_t b = 0x55;
  t.write(mmio::kStatus, std::span<const uint8_t>(&b, 1));
  EXPECT_EQ(rd(mmio::kStatus), 0u);
  uint8_t r[2] = {9, 9};
  t.read(mmio::kMagic + 1, r);
  EXPECT_EQ(r[0], 0);
  wr(0x7fc, 1);  // unknown register
  wr(mmio::kQueueNotify, 99);  // no such queue
}

TEST_F(MmioTest, SaveAndRestoreRoundTrip) {
  TestRing ring(mem, 16);
  negotiate(bit(kFVersion1) | bit(kFEventIdx));
  setup_queue(0, ring);
  wr(mmio::kStatus, kAll);
  ring.desc(0, TestRing::kData, 10, kDescFWrite);
  ring.publish(0);
  wr(mmio::kQueueNotify, 0);
  MmioState s = t.save();
  EXPECT_EQ(s.status, kAll);
  EXPECT_EQ(s.queues.size(), 2u);
  EXPECT_EQ(s.queues[0].next_avail, 1);
  EXPECT_TRUE(s.queues[0].event_idx);
  EXPECT_EQ(s.interrupt_status, kInterruptUsedBuffer);

  auto* dev2 = new EchoDevice;
  MmioTransport t2(std::unique_ptr<VirtioDevice>(dev2), mem);
  ASSERT_TRUE(t2.restore(s));
  EXPECT_EQ(dev2->activations, 1);
  EXPECT_EQ(t2.acked_features(), t.acked_features());
  EXPECT_EQ(t2.save().queues[0].next_used, 1);
  // The restored device continues where the first stopped.
  ring.publish(0);
  t2.handle_notify(0);
  EXPECT_EQ(ring.used_idx(), 2);

  MmioState bad = s;
  bad.queues.pop_back();
  EXPECT_FALSE(t2.restore(bad).ok());
}

}  // namespace
}  // namespace vessel::vmm::virtio
