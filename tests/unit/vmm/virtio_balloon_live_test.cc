// The balloon's statistics queue end to end through the virtio-mmio transport
// and a device worker, driven the way Linux's virtio_balloon drives it: the
// first statistics buffer is posted and notified during probe, before
// DRIVER_OK; every later one after the device hands the previous one back on
// its polling timer, also when the guest took longer than one polling interval
// to get its driver ready.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "virtio_test_ring.h"
#include "vmm/virtio/balloon/balloon.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/worker.h"

namespace vessel::vmm::virtio {
namespace {

using testing::TestRing;

TEST(BalloonLive, StatisticsArePolledThroughTheWorker) {
  GuestMemory mem = testing::make_memory();
  BalloonOptions o;
  o.stats_interval_s = 1;
  auto dev = BalloonDevice::create(o);
  ASSERT_TRUE(dev) << dev.error().message();
  BalloonDevice* balloon = dev->get();
  MmioTransport t(std::move(*dev), mem, true);
  std::atomic<int> irqs{0};
  t.set_irq([&] { ++irqs; });
  auto worker = DeviceWorker::create(t, "balloon-test");
  ASSERT_TRUE(worker) << worker.error().message();
  (*worker)->start();
  testing::MmioDriver driver{t};
  auto wr = [&](uint64_t off, uint32_t v) { driver.wr(off, v); };
  driver.negotiate(bit(kFVersion1) | bit(kFEventIdx) | bit(kBalloonFStatsVq));
  TestRing ring(mem, 16);  // the statistics queue (index 2)
  driver.setup_queue(2, ring);
  // One statistics entry: available_memory (tag 6) = `v`.
  auto post = [&](uint16_t head, uint64_t v) {
    uint8_t e[10];
    uint16_t tag = 6;
    std::memcpy(e, &tag, 2);
    std::memcpy(e + 2, &v, 8);
    ASSERT_TRUE(mem.write(TestRing::kData + 16 * head, std::span<const uint8_t>(e, 10)));
    ring.desc(head, TestRing::kData + 16 * head, 10);
    ring.publish(head);
    ring.set_used_event(ring.used_idx());  // callbacks on, as virtqueue_get_buf leaves them
    wr(mmio::kQueueNotify, 2);
  };
  post(0, 1000);  // during probe
  // A guest's boot takes longer than the polling interval before its driver is
  // ready: the timer must not have expired for good by then (a periodic timerfd
  // that nobody reads never fires again).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
  auto available = [&] { return balloon->statistics()[static_cast<size_t>(BalloonStat::kAvailableMemory)]; };
  auto wait_until = [](auto pred) {
    for (int i = 0; i < 400 && !pred(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return pred();
  };
  ASSERT_TRUE(wait_until([&] { return available() == std::optional<uint64_t>(1000); }))
      << "the buffer posted before DRIVER_OK is read";
  // The timer hands it back within a second or two, with an interrupt.
  ASSERT_TRUE(wait_until([&] { return ring.used_idx() == 1; })) << "the polling timer returns the buffer";
  EXPECT_GE(irqs.load(), 1);
  post(1, 2000);  // the driver's refill
  ASSERT_TRUE(wait_until([&] { return available() == std::optional<uint64_t>(2000); })) << "fresh statistics are read";
  ASSERT_TRUE(wait_until([&] { return ring.used_idx() == 2; })) << "and polled again";
  post(2, 3000);
  ASSERT_TRUE(wait_until([&] { return available() == std::optional<uint64_t>(3000); }));
  EXPECT_EQ(balloon->counters().stats_received, 3u);
  EXPECT_GE(balloon->counters().stats_polls, 2u);
  (*worker)->stop();
}

}  // namespace
}  // namespace vessel::vmm::virtio
