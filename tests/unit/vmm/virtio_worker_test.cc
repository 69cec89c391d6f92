// DeviceWorker: pause() parks the thread (it takes no queue notification until
// start()), keeps it (pause and resume create no thread), and stop() ends it.
#include <dirent.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "virtio_test_ring.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/rng/rng.h"
#include "vmm/virtio/virtio.h"
#include "vmm/virtio/worker.h"

namespace vessel::vmm::virtio {
namespace {

using testing::TestRing;

size_t threads() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/task");
  while (d && ::readdir(d)) ++n;
  if (d) ::closedir(d);
  return n - 2;  // . and ..
}

bool wait_until(const std::function<bool()>& pred, int ms) {
  for (int i = 0; i < ms / 5 && !pred(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return pred();
}

TEST(DeviceWorker, PauseParksTheThreadAndStartWakesIt) {
  GuestMemory mem = testing::make_memory();
  MmioTransport t(std::make_unique<RngDevice>(), mem, true);
  t.set_irq([] {});
  testing::MmioDriver driver{t};
  driver.negotiate(bit(kFVersion1));
  TestRing ring(mem, 16);
  driver.setup_queue(0, ring);
  driver.driver_ok();
  auto request = [&](uint16_t head) {
    ring.desc(head, TestRing::kData + 64 * head, 64, kDescFWrite);
    ring.publish(head);
    driver.wr(mmio::kQueueNotify, 0);
  };

  auto w = DeviceWorker::create(t, "rng-test");
  ASSERT_TRUE(w) << w.error().message();
  size_t before = threads();
  (*w)->start();
  EXPECT_EQ(threads(), before + 1);
  request(0);
  ASSERT_TRUE(wait_until([&] { return ring.used_idx() == 1; }, 2000)) << "the running worker serves the queue";

  (*w)->pause();
  (*w)->pause();  // again: nothing
  request(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(ring.used_idx(), 1) << "a paused worker touched the queue";
  EXPECT_EQ(threads(), before + 1) << "pause ended the thread";
  (*w)->start();
  ASSERT_TRUE(wait_until([&] { return ring.used_idx() == 2; }, 2000)) << "the notification that came while paused is served";
  EXPECT_EQ(threads(), before + 1) << "start after pause made a second thread";

  // Pause and resume again, quickly, many times: no request is lost or served while paused.
  for (uint16_t i = 2; i < 12; ++i) {
    (*w)->pause();
    uint16_t used = ring.used_idx();
    request(i);
    EXPECT_EQ(ring.used_idx(), used);
    (*w)->start();
  }
  ASSERT_TRUE(wait_until([&] { return ring.used_idx() == 12; }, 2000));
  (*w)->pause();
  (*w)->stop();  // a paused worker stops
  EXPECT_TRUE(wait_until([&] { return threads() == before; }, 2000)) << "stop left the thread";
  (*w)->start();  // and starts again after a stop
  request(12);
  EXPECT_TRUE(wait_until([&] { return ring.used_idx() == 13; }, 2000));
  (*w)->stop();
}

}  // namespace
}  // namespace vessel::vmm::virtio
