// A hand-built split virtqueue in a small GuestMemory, for the virtio tests.
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "vmm/kvm/memory.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/queue.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio::testing {

inline GuestMemory make_memory(uint64_t size = 1 << 20) {
  auto m = GuestMemory::create(size, 3ULL << 30, 4ULL << 30);
  EXPECT_TRUE(m.ok());
  return std::move(m).value();
}

struct TestRing {
  static constexpr uint64_t kDesc = 0x1000, kAvail = 0x2000, kUsed = 0x3000, kData = 0x10000;

  GuestMemory& mem;
  uint16_t size;
  uint16_t avail_idx = 0;

  TestRing(GuestMemory& m, uint16_t n) : mem(m), size(n) {}

  // Programs `q` with this ring's addresses.
  void setup(Queue& q, bool event_idx = false, bool indirect = true) const {
    auto& s = q.state();
    s.size = size;
    s.desc_table = kDesc;
    s.avail_ring = kAvail;
    s.used_ring = kUsed;
    s.ready = true;
    s.event_idx = event_idx;
    s.indirect = indirect;
  }
  void desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0, uint64_t table = kDesc) {
    Descriptor d{addr, len, flags, next};
    ASSERT_TRUE(mem.write_obj(table + 16ULL * i, d));
  }
  void publish(uint16_t head) {
    ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 4 + 2ULL * (avail_idx % size), head));
    ++avail_idx;
    ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 2, avail_idx));
  }
  void set_avail_idx(uint16_t v) {
    avail_idx = v;
    ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 2, v));
  }
  void set_used_event(uint16_t v) { ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 4 + 2ULL * size, v)); }
  void set_avail_flags(uint16_t v) { ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail, v)); }
  uint16_t used_idx() const { return *mem.read_obj<uint16_t>(kUsed + 2); }
  uint16_t avail_event() const { return *mem.read_obj<uint16_t>(kUsed + 4 + 8ULL * size); }
  std::pair<uint32_t, uint32_t> used(uint16_t i) const {
    uint64_t at = kUsed + 4 + 8ULL * (i % size);
    return {*mem.read_obj<uint32_t>(at), *mem.read_obj<uint32_t>(at + 4)};
  }
};

// Drives a virtio-mmio transport as a driver does, by register writes.
struct MmioDriver {
  MmioTransport& t;
  void wr(uint64_t off, uint32_t v) { t.write(off, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4)); }
  // ACKNOWLEDGE, DRIVER, the features, FEATURES_OK.
  void negotiate(uint64_t features) {
    wr(mmio::kStatus, kStatusAcknowledge);
    wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver);
    wr(mmio::kDriverFeaturesSel, 0);
    wr(mmio::kDriverFeatures, static_cast<uint32_t>(features));
    wr(mmio::kDriverFeaturesSel, 1);
    wr(mmio::kDriverFeatures, static_cast<uint32_t>(features >> 32));
    wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
  }
  // Queue `index` on ring `r`'s addresses, ready.
  void setup_queue(unsigned index, const TestRing& r) {
    wr(mmio::kQueueSel, index);
    wr(mmio::kQueueNum, r.size);
    wr(mmio::kQueueDescLow, static_cast<uint32_t>(TestRing::kDesc));
    wr(mmio::kQueueDescHigh, 0);
    wr(mmio::kQueueDriverLow, static_cast<uint32_t>(TestRing::kAvail));
    wr(mmio::kQueueDeviceLow, static_cast<uint32_t>(TestRing::kUsed));
    wr(mmio::kQueueReady, 1);
  }
  void driver_ok() { wr(mmio::kStatus, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk); }
};

}  // namespace vessel::vmm::virtio::testing
