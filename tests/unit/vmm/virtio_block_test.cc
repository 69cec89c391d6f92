// virtio-blk request parsing against a raw image in a temp file, plus the
// rng device and the rate limiter.
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <cstdio>
#include <map>

#include <cstring>
#include <string>
#include <vector>

#include "virtio_test_ring.h"
#include "vmm/disk/raw.h"
#include "vmm/virtio/block/block.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/rate_limiter.h"
#include "vmm/virtio/rng/rng.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {
namespace {

// A chain over plain buffers: the header, data segments, the status byte.
struct Req {
  std::vector<std::vector<uint8_t>> bufs;
  DescriptorChain chain;
  Req& seg(size_t len, bool writable, uint8_t fill = 0) {
    bufs.emplace_back(len, fill);
    dirs.push_back(writable);
    return *this;
  }
  std::vector<bool> dirs;
  const DescriptorChain& build() {
    chain = {};
    for (size_t i = 0; i < bufs.size(); ++i) {
      chain.segments.push_back({0x1000 * i, static_cast<uint32_t>(bufs[i].size()), static_cast<bool>(dirs[i]), bufs[i].data()});
      (dirs[i] ? chain.writable_bytes : chain.readable_bytes) += bufs[i].size();
    }
    return chain;
  }
  uint8_t status() const { return bufs.back().back(); }
};

std::vector<uint8_t> header(uint32_t type, uint64_t sector) {
  std::vector<uint8_t> h(16, 0);
  std::memcpy(h.data(), &type, 4);
  std::memcpy(h.data() + 8, &sector, 8);
  return h;
}

struct BlockTest : ::testing::Test {
  std::string path;
  static constexpr uint64_t kSize = 1 << 20;

  void SetUp() override {
    char tmpl[] = "/tmp/vessel-blk-XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    path = tmpl;
    std::vector<uint8_t> data(kSize);
    for (size_t i = 0; i < kSize; ++i) data[i] = static_cast<uint8_t>(i / 512);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(kSize));
    ::close(fd);
  }
  void TearDown() override { ::unlink(path.c_str()); }
  std::unique_ptr<BlockDevice> open(BlockOptions o = {}) {
    auto disk = disk::RawDisk::open(path, o.readonly);
    EXPECT_TRUE(disk.ok());
    auto d = BlockDevice::create(std::move(disk).value(), o);
    EXPECT_TRUE(d.ok());
    return std::move(d).value();
  }
  Req request(uint32_t type, uint64_t sector, size_t out_len, size_t in_len) {
    Req r;
    r.bufs.push_back(header(type, sector));
    r.dirs.push_back(false);
    if (out_len) r.seg(out_len, false, 0xab);
    if (in_len) r.seg(in_len, true);
    r.seg(1, true, 0xff);  // status
    return r;
  }
};

TEST_F(BlockTest, ConfigReportsCapacity) {
  auto d = open();
  uint64_t cap = 0;
  d->read_config(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&cap), 8));
  EXPECT_EQ(cap, kSize / 512);
  EXPECT_TRUE(d->device_features() & bit(blk::kFFlush));
  EXPECT_FALSE(d->device_features() & bit(blk::kFRo));
}

TEST_F(BlockTest, ReadsSectors) {
  auto d = open();
  Req r = request(blk::kTIn, 3, 0, 1024);
  auto n = d->handle_request(r.build());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1025u);
  EXPECT_EQ(r.status(), blk::kSOk);
  EXPECT_EQ(r.bufs[1][0], 3);
  EXPECT_EQ(r.bufs[1][600], 4);
}

TEST_F(BlockTest, ReadSplitAcrossSegments) {
  auto d = open();
  Req r;
  r.bufs.push_back(header(blk::kTIn, 1));
  r.dirs.push_back(false);
  r.seg(100, true).seg(412, true).seg(1, true, 0xff);
  auto n = d->handle_request(r.build());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(r.status(), blk::kSOk);
  EXPECT_EQ(r.bufs[2][411], 1);
}

TEST_F(BlockTest, WritesAndFlushes) {
  auto d = open();
  Req w = request(blk::kTOut, 10, 512, 0);
  ASSERT_TRUE(d->handle_request(w.build()).ok());
  EXPECT_EQ(w.status(), blk::kSOk);
  Req f = request(blk::kTFlush, 0, 0, 0);
  ASSERT_TRUE(d->handle_request(f.build()).ok());
  EXPECT_EQ(f.status(), blk::kSOk);
  Req r = request(blk::kTIn, 10, 0, 512);
  ASSERT_TRUE(d->handle_request(r.build()).ok());
  EXPECT_EQ(r.bufs[1][17], 0xab);
}

TEST_F(BlockTest, OutOfRangeAndMisalignedRequestsFail) {
  auto d = open();
  Req r = request(blk::kTIn, kSize / 512, 0, 512);  // one past the end
  ASSERT_TRUE(d->handle_request(r.build()).ok());
  EXPECT_EQ(r.status(), blk::kSIoErr);
  Req big = request(blk::kTIn, ~0ULL / 256, 0, 512);  // sector * 512 overflows
  ASSERT_TRUE(d->handle_request(big.build()).ok());
  EXPECT_EQ(big.status(), blk::kSIoErr);
  Req odd = request(blk::kTOut, 0, 100, 0);  // not whole sectors
  ASSERT_TRUE(d->handle_request(odd.build()).ok());
  EXPECT_EQ(odd.status(), blk::kSIoErr);
  Req unk = request(99, 0, 0, 0);
  ASSERT_TRUE(d->handle_request(unk.build()).ok());
  EXPECT_EQ(unk.status(), blk::kSUnsupp);
}

TEST_F(BlockTest, ShortHeaderAndMissingStatus) {
  auto d = open();
  Req shortr;
  shortr.seg(8, false).seg(1, true, 0xff);
  ASSERT_TRUE(d->handle_request(shortr.build()).ok());
  EXPECT_EQ(shortr.status(), blk::kSIoErr);
  Req nostatus;
  nostatus.bufs.push_back(header(blk::kTIn, 0));
  nostatus.dirs.push_back(false);
  EXPECT_FALSE(d->handle_request(nostatus.build()).ok());
}

TEST_F(BlockTest, GetIdReturnsSerial) {
  BlockOptions o;
  o.serial = "disk-serial-1";
  auto d = open(o);
  Req r = request(blk::kTGetId, 0, 0, 20);
  auto n = d->handle_request(r.build());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 21u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(r.bufs[1].data())), "disk-serial-1");
}

TEST_F(BlockTest, DiscardAndWriteZeroes) {
  auto d = open();
  auto seg = [](uint64_t sector, uint32_t n, uint32_t flags) {
    std::vector<uint8_t> s(16);
    std::memcpy(s.data(), &sector, 8);
    std::memcpy(s.data() + 8, &n, 4);
    std::memcpy(s.data() + 12, &flags, 4);
    return s;
  };
  Req wz;
  wz.bufs = {header(blk::kTWriteZeroes, 0), seg(4, 2, 0), {0xff}};
  wz.dirs = {false, false, true};
  ASSERT_TRUE(d->handle_request(wz.build()).ok());
  EXPECT_EQ(wz.status(), blk::kSOk);
  Req r = request(blk::kTIn, 4, 0, 1024);
  ASSERT_TRUE(d->handle_request(r.build()).ok());
  EXPECT_EQ(r.bufs[1][0], 0);
  EXPECT_EQ(r.bufs[1][1023], 0);
  Req dis;
  dis.bufs = {header(blk::kTDiscard, 0), seg(kSize / 512, 1, 0), {0xff}};  // past the end
  dis.dirs = {false, false, true};
  ASSERT_TRUE(d->handle_request(dis.build()).ok());
  EXPECT_EQ(dis.status(), blk::kSIoErr);
  Req dis2;
  dis2.bufs = {header(blk::kTDiscard, 0), seg(8, 8, 0), {0xff}};
  dis2.dirs = {false, false, true};
  ASSERT_TRUE(d->handle_request(dis2.build()).ok());
  EXPECT_EQ(dis2.status(), blk::kSOk);
}

TEST_F(BlockTest, ReadOnlyRefusesWrites) {
  BlockOptions o;
  o.readonly = true;
  auto d = open(o);
  EXPECT_TRUE(d->device_features() & bit(blk::kFRo));
  Req w = request(blk::kTOut, 0, 512, 0);
  ASSERT_TRUE(d->handle_request(w.build()).ok());
  EXPECT_EQ(w.status(), blk::kSIoErr);
  Req r = request(blk::kTIn, 0, 0, 512);
  ASSERT_TRUE(d->handle_request(r.build()).ok());
  EXPECT_EQ(r.status(), blk::kSOk);
}

TEST_F(BlockTest, ThroughTheTransportAndAQueue) {
  GuestMemory mem = testing::make_memory();
  testing::TestRing ring(mem, 16);
  auto* dev = open().release();
  MmioTransport t(std::unique_ptr<VirtioDevice>(dev), mem);
  int irqs = 0;
  t.set_irq([&] { ++irqs; });
  t.queue(0).state() = {};
  ring.setup(t.queue(0));
  ASSERT_TRUE(t.queue(0).activate(mem));
  MmioState s = t.save();
  s.status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
  s.driver_features = bit(kFVersion1);
  ASSERT_TRUE(t.restore(s));
  ASSERT_TRUE(mem.write_obj(testing::TestRing::kData, header(blk::kTIn, 2)[0]));
  auto h = header(blk::kTIn, 2);
  ASSERT_TRUE(mem.write(testing::TestRing::kData, h));
  ring.desc(0, testing::TestRing::kData, 16, kDescFNext, 1);
  ring.desc(1, testing::TestRing::kData + 0x1000, 512, kDescFNext | kDescFWrite, 2);
  ring.desc(2, testing::TestRing::kData + 0x2000, 1, kDescFWrite);
  ring.publish(0);
  t.handle_notify(0);
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).second, 513u);
  EXPECT_EQ(*mem.read_obj<uint8_t>(testing::TestRing::kData + 0x2000), blk::kSOk);
  EXPECT_EQ(*mem.read_obj<uint8_t>(testing::TestRing::kData + 0x1000), 2);
  EXPECT_EQ(irqs, 1);
}

TEST(Rng, FillsWritableBuffers) {
  GuestMemory mem = testing::make_memory();
  testing::TestRing ring(mem, 8);
  MmioTransport t(std::make_unique<RngDevice>(), mem);
  ring.setup(t.queue(0));
  MmioState s = t.save();
  s.queues[0] = t.queue(0).state();
  s.status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
  s.driver_features = bit(kFVersion1);
  ASSERT_TRUE(t.restore(s));
  ring.desc(0, testing::TestRing::kData, 64, kDescFWrite);
  ring.publish(0);
  t.handle_notify(0);
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(ring.used(0).second, 64u);
  EXPECT_NE(*mem.read_obj<uint64_t>(testing::TestRing::kData), 0u);
}

TEST(RateLimiter, BucketsBlockAndRefill) {
  RateLimiter rl(1000, 0);  // 1000 bytes/s
  const uint64_t t0 = 1'000'000'000;
  EXPECT_TRUE(rl.admit(t0));
  rl.consume(1500);  // into debt
  EXPECT_FALSE(rl.admit(t0));
  EXPECT_TRUE(rl.blocked());
  rl.timer_fired();
  EXPECT_FALSE(rl.admit(t0 + 100'000'000));  // 100 ms: still 400 in debt
  rl.timer_fired();
  EXPECT_TRUE(rl.admit(t0 + 600'000'000));  // repaid
  RateLimiter ops(0, 2);
  EXPECT_TRUE(ops.admit(t0));
  ops.consume(0);
  EXPECT_TRUE(ops.admit(t0));
  ops.consume(0);
  EXPECT_FALSE(ops.admit(t0));
  RateLimiter none;
  EXPECT_TRUE(none.unlimited());
  EXPECT_TRUE(none.admit(0));
}

TEST(RateLimiter, CountsThrottlingAndTakesNewRates) {
  RateLimiter rl(1000, 0);
  ASSERT_TRUE(rl.init().ok());
  const uint64_t t0 = 1'000'000'000;
  EXPECT_TRUE(rl.admit(t0));
  rl.consume(5000);
  EXPECT_FALSE(rl.admit(t0));
  EXPECT_FALSE(rl.admit(t0));  // still blocked: counted once
  EXPECT_EQ(rl.throttled(), 1u);
  // New rates (PATCH /drives): the blocked limiter is released through its timer.
  rl.set_rates(0, 0);
  EXPECT_TRUE(rl.unlimited());
  pollfd p{rl.timer_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 1000), 1);
  rl.timer_fired();
  EXPECT_TRUE(rl.admit(t0));
  // From unlimited to limited: a timer exists when asked for at init.
  RateLimiter later;
  ASSERT_TRUE(later.init(true).ok());
  EXPECT_GE(later.timer_fd(), 0);
  later.set_rates(100, 0);
  EXPECT_TRUE(later.admit(t0));
  later.consume(1000);
  EXPECT_FALSE(later.admit(t0));
}

TEST_F(BlockTest, CountsIoAndSwapsItsDisk) {
  auto d = open();
  Req w = request(blk::kTOut, 10, 1024, 0);
  ASSERT_TRUE(d->handle_request(w.build()).ok());
  Req r = request(blk::kTIn, 0, 0, 512);
  ASSERT_TRUE(d->handle_request(r.build()).ok());
  Req bad = request(99, 0, 0, 0);
  ASSERT_TRUE(d->handle_request(bad.build()).ok());
  std::map<std::string, uint64_t> m;
  d->report_metrics([&](const char* k, uint64_t v) { m[k] = v; });
  EXPECT_EQ(m["write_count"], 1u);
  EXPECT_EQ(m["write_bytes"], 1024u);
  EXPECT_EQ(m["read_count"], 1u);
  EXPECT_EQ(m["read_bytes"], 512u);
  EXPECT_EQ(m["invalid_reqs_count"], 1u);
  // A bigger image: the capacity follows (the VMM then raises a config change).
  std::string big = path + ".big";
  ASSERT_EQ(::truncate(path.c_str(), kSize), 0);
  { FILE* f = fopen(big.c_str(), "w"); ASSERT_NE(f, nullptr); fclose(f); }
  ASSERT_EQ(::truncate(big.c_str(), 2 * kSize), 0);
  auto disk = disk::RawDisk::open(big, false);
  ASSERT_TRUE(disk.ok());
  ASSERT_TRUE(d->replace_disk(std::move(disk).value()).ok());
  EXPECT_EQ(d->capacity_sectors(), 2 * kSize / 512);
  d->set_rate_limits(4096, 0);
  m.clear();
  d->report_metrics([&](const char* k, uint64_t v) { m[k] = v; });
  EXPECT_EQ(m["update_count"], 2u);
  ::unlink(big.c_str());
}

TEST(TokenBucket, WaitMatchesDebt) {
  TokenBucket b(100);
  b.refill(1);
  b.take(150);
  EXPECT_FALSE(b.has_tokens());
  EXPECT_NEAR(static_cast<double>(b.wait_ns()), 0.51e9, 0.02e9);
}

}  // namespace
}  // namespace vessel::vmm::virtio
