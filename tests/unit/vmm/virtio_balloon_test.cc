// virtio-balloon: inflate/deflate PFN lists, statistics polling, free page
// reporting, the configuration space, and hostile input (PFNs outside RAM).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "virtio_test_ring.h"
#include "vmm/virtio/balloon/balloon.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {
namespace {

using testing::TestRing;

// A transport stand-in: the queues, the accepted features and counts of interrupts.
// Its RAM is in 4 KiB pages: with the 2 MiB pages that GuestMemory::create() asks
// for, whether a hole punched in part of one frees memory depends on whether the
// kernel could split that huge page just then (a CI run found it could not), so
// the freed-block counts below would not be deterministic. HugePageRam... covers
// what does hold there.
struct FakeBalloonHost : DeviceHost {
  GuestMemory mem = [] {
    auto m = GuestMemory::create_small_pages(4 << 20, 3ULL << 30, 4ULL << 30);
    EXPECT_TRUE(m.ok());
    return std::move(m).value();
  }();
  std::vector<Queue> queues = std::vector<Queue>(4, Queue(BalloonDevice::kQueueSize));
  uint64_t features = bit(kFVersion1) | bit(kBalloonFStatsVq) | bit(kBalloonFPageReporting);
  int used_irqs = 0, config_irqs = 0;

  GuestMemory& memory() override { return mem; }
  Queue& queue(unsigned index) override { return queues.at(index); }
  uint64_t acked_features() const override { return features; }
  void notify_used(unsigned) override { ++used_irqs; }
  void notify_config() override { ++config_irqs; }
};

struct BalloonTest : ::testing::Test {
  FakeBalloonHost host;
  TestRing ring{host.mem, 16};
  std::unique_ptr<BalloonDevice> dev;

  void SetUp() override {
    BalloonOptions o;
    o.free_page_reporting = true;
    auto d = BalloonDevice::create(o);
    ASSERT_TRUE(d) << d.error().message();
    dev = std::move(d).value();
    ASSERT_TRUE(dev->activate(host));
  }
  // Sets up queue `index` on the test ring.
  void use_queue(unsigned index) {
    // Touch the rings now, so that their pages do not count in memfd_blocks() later.
    ASSERT_TRUE(host.mem.fill(TestRing::kDesc, 0, TestRing::kData - TestRing::kDesc));
    ring.setup(host.queues[index]);
    ASSERT_TRUE(host.queues[index].activate(host.mem));
  }
  // Puts a list of PFNs at kData as one readable descriptor.
  void post_pfns(const std::vector<uint32_t>& pfns, uint16_t slot = 0) {
    uint64_t at = TestRing::kData + 0x1000ULL * slot;
    ASSERT_TRUE(host.mem.write(at, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(pfns.data()), pfns.size() * 4)));
    ring.desc(slot, at, static_cast<uint32_t>(pfns.size() * 4));
    ring.publish(slot);
  }
  uint64_t memfd_blocks() {
    struct stat st {};
    EXPECT_EQ(::fstat(host.mem.fd(), &st), 0);
    return static_cast<uint64_t>(st.st_blocks);
  }
};

constexpr uint64_t kPage = kBalloonPageSize;
constexpr uint32_t kVictimPfn = 0x200;  // 2 MiB: inside the 4 MiB guest, away from the rings

TEST_F(BalloonTest, InflateGivesPagesBackToTheHost) {
  ASSERT_TRUE(host.mem.fill(kVictimPfn * kPage, 0xaa, 3 * kPage));
  use_queue(0);
  post_pfns({kVictimPfn, kVictimPfn + 1, kVictimPfn + 2});
  uint64_t before = memfd_blocks();
  ASSERT_TRUE(dev->process_queue(host, 0));
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(host.used_irqs, 1);
  EXPECT_EQ(dev->counters().inflated_pages, 3u);
  // The host's memory for those pages is gone (the memfd has a hole) and they read as zero.
  EXPECT_LE(memfd_blocks() + 3 * kPage / 512, before);
  EXPECT_EQ(*host.mem.read_obj<uint64_t>(kVictimPfn * kPage), 0u);
  EXPECT_EQ(*host.mem.read_obj<uint64_t>((kVictimPfn + 2) * kPage + 8), 0u);
}

// Guest RAM in huge pages (what vessel vm uses where the host allows THP): an
// inflated 4 KiB page inside a 2 MiB page reads as zero afterwards and its
// neighbours keep their contents, whether or not the kernel split the huge page
// to free it.
TEST_F(BalloonTest, HugePageRamInflatedPagesReadAsZeroAndNeighboursKeepTheirs) {
  auto huge = GuestMemory::create(4 << 20, 3ULL << 30, 4ULL << 30);
  ASSERT_TRUE(huge.ok()) << huge.error().message();
  host.mem = std::move(huge).value();
  ASSERT_TRUE(host.mem.fill(kVictimPfn * kPage, 0xaa, 4 * kPage));
  use_queue(0);
  post_pfns({kVictimPfn + 1, kVictimPfn + 2});
  ASSERT_TRUE(dev->process_queue(host, 0));
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(dev->counters().inflated_pages, 2u);
  EXPECT_EQ(dev->counters().discard_errors, 0u);
  EXPECT_EQ(*host.mem.read_obj<uint8_t>(kVictimPfn * kPage + kPage - 1), 0xaa);
  EXPECT_EQ(*host.mem.read_obj<uint64_t>((kVictimPfn + 1) * kPage), 0u);
  EXPECT_EQ(*host.mem.read_obj<uint64_t>((kVictimPfn + 2) * kPage + kPage - 8), 0u);
  EXPECT_EQ(*host.mem.read_obj<uint8_t>((kVictimPfn + 3) * kPage), 0xaa);
}

TEST_F(BalloonTest, PfnsOutsideGuestRamAreIgnoredNotActedOn) {
  ASSERT_TRUE(host.mem.fill(kVictimPfn * kPage, 0xaa, kPage));
  use_queue(0);
  // Beyond RAM, at the very top, and one page past the end of RAM; then one good PFN.
  uint32_t past_end = static_cast<uint32_t>(host.mem.size() / kPage);
  post_pfns({0xffffffffu, 0x80000000u, past_end, kVictimPfn});
  ASSERT_TRUE(dev->process_queue(host, 0));
  EXPECT_EQ(dev->counters().invalid_pfns, 3u);
  EXPECT_EQ(dev->counters().inflated_pages, 1u);
  EXPECT_EQ(ring.used_idx(), 1);
}

TEST_F(BalloonTest, DuplicatesAndOddLengthsAreHarmless) {
  ASSERT_TRUE(host.mem.fill(kVictimPfn * kPage, 0xaa, kPage));
  use_queue(0);
  std::vector<uint32_t> pfns(600, kVictimPfn);  // more than one read chunk, all the same page
  post_pfns(pfns);
  ASSERT_TRUE(dev->process_queue(host, 0));
  EXPECT_EQ(dev->counters().inflated_pages, 600u);
  // A 6-byte buffer holds one whole PFN and half of another.
  uint32_t two[2] = {kVictimPfn + 1, kVictimPfn + 2};
  ASSERT_TRUE(host.mem.write(TestRing::kData + 0x1000, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(two), 8)));
  ring.desc(1, TestRing::kData + 0x1000, 6);
  ring.publish(1);
  ASSERT_TRUE(dev->process_queue(host, 0));
  EXPECT_EQ(dev->counters().inflated_pages, 601u);
  EXPECT_EQ(ring.used_idx(), 2);
}

TEST_F(BalloonTest, DeflateCountsButDoesNotDiscard) {
  ASSERT_TRUE(host.mem.fill(kVictimPfn * kPage, 0xaa, kPage));
  use_queue(1);
  post_pfns({kVictimPfn});
  ASSERT_TRUE(dev->process_queue(host, 1));
  EXPECT_EQ(dev->counters().deflated_pages, 1u);
  EXPECT_EQ(*host.mem.read_obj<uint8_t>(kVictimPfn * kPage), 0xaa);
}

TEST_F(BalloonTest, ConfigSpaceHoldsTargetAndActual) {
  dev->set_target_pages(1234);
  EXPECT_EQ(host.config_irqs, 1);
  uint32_t v = 0;
  dev->read_config(0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&v), 4));
  EXPECT_EQ(v, 1234u);
  uint32_t actual = 1000;
  dev->write_config(4, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&actual), 4));
  EXPECT_EQ(dev->actual_pages(), 1000u);
  // num_pages is read-only for the driver; writes elsewhere are ignored.
  dev->write_config(0, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&actual), 4));
  EXPECT_EQ(dev->target_pages(), 1234u);
  uint8_t past[4] = {1, 1, 1, 1};
  dev->read_config(4096, std::span<uint8_t>(past, 4));
  EXPECT_EQ(past[0], 0);
}

TEST_F(BalloonTest, StatisticsAreReadAndPolled) {
  use_queue(2);
  // free_memory = 123, total_memory = 456, an unknown tag 99.
  std::vector<uint8_t> buf;
  auto entry = [&](uint16_t tag, uint64_t v) {
    uint8_t e[10];
    std::memcpy(e, &tag, 2);
    std::memcpy(e + 2, &v, 8);
    buf.insert(buf.end(), e, e + 10);
  };
  entry(4, 123);
  entry(5, 456);
  entry(99, 7);
  ASSERT_TRUE(host.mem.write(TestRing::kData, buf));
  ring.desc(0, TestRing::kData, static_cast<uint32_t>(buf.size()));
  ring.publish(0);
  ASSERT_TRUE(dev->process_queue(host, 2));
  auto stats = dev->statistics();
  EXPECT_EQ(stats[static_cast<size_t>(BalloonStat::kFreeMemory)], 123u);
  EXPECT_EQ(stats[static_cast<size_t>(BalloonStat::kTotalMemory)], 456u);
  EXPECT_FALSE(stats[static_cast<size_t>(BalloonStat::kSwapIn)].has_value());
  EXPECT_EQ(ring.used_idx(), 0) << "the buffer is held until the next poll";
  // A poll returns it to the driver.
  ASSERT_TRUE(dev->process_event(host, dev->event_fds()[0]));
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(host.used_irqs, 1);
  // Nothing held: a second poll does nothing.
  ASSERT_TRUE(dev->process_event(host, dev->event_fds()[0]));
  EXPECT_EQ(ring.used_idx(), 1);
}

TEST_F(BalloonTest, FreePageReportingDiscardsTheRanges) {
  ASSERT_TRUE(host.mem.fill(kVictimPfn * kPage, 0xaa, 8 * kPage));
  use_queue(3);
  ring.desc(0, kVictimPfn * kPage, 8 * kPage, kDescFWrite);
  ring.publish(0);
  uint64_t before = memfd_blocks();
  ASSERT_TRUE(dev->process_queue(host, 3));
  EXPECT_EQ(ring.used_idx(), 1);
  EXPECT_EQ(dev->counters().reported_bytes, 8 * kPage);
  EXPECT_LE(memfd_blocks() + 8 * kPage / 512, before);
  EXPECT_EQ(*host.mem.read_obj<uint64_t>(kVictimPfn * kPage + 4 * kPage), 0u);
}

TEST_F(BalloonTest, ReportingQueueMovesUpWithoutStatistics) {
  host.features = bit(kFVersion1) | bit(kBalloonFPageReporting);
  ASSERT_TRUE(dev->activate(host));
  ASSERT_TRUE(host.mem.fill(kVictimPfn * kPage, 0xaa, kPage));
  use_queue(2);
  ring.desc(0, kVictimPfn * kPage, kPage, kDescFWrite);
  ring.publish(0);
  ASSERT_TRUE(dev->process_queue(host, 2));
  EXPECT_EQ(dev->counters().reported_bytes, kPage);
  EXPECT_FALSE(dev->process_queue(host, 3)) << "a queue the driver did not negotiate";
}

TEST_F(BalloonTest, ReportedRangeOutsideRamBreaksTheQueueNotTheHost) {
  use_queue(3);
  ring.desc(0, host.mem.size() - kPage, 2 * kPage, kDescFWrite);  // runs past the end of RAM
  ring.publish(0);
  EXPECT_FALSE(dev->process_queue(host, 3));
  EXPECT_EQ(dev->counters().reported_bytes, 0u);
}

TEST_F(BalloonTest, SaveAndRestoreKeepTargetStatsAndHeldBuffer) {
  dev->set_target_pages(77);
  uint32_t actual = 70;
  dev->write_config(4, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&actual), 4));
  ASSERT_TRUE(dev->set_stats_interval(5));
  BalloonState s = dev->save();
  s.stats[0] = 9;
  s.stats_buffer_held = true;
  s.stats_buffer_head = 3;
  BalloonOptions o;
  o.free_page_reporting = true;
  auto d2 = BalloonDevice::create(o);
  ASSERT_TRUE(d2);
  ASSERT_TRUE((*d2)->restore(s));
  EXPECT_EQ((*d2)->target_pages(), 77u);
  EXPECT_EQ((*d2)->actual_pages(), 70u);
  EXPECT_EQ((*d2)->stats_interval(), 5u);
  EXPECT_EQ((*d2)->statistics()[0], 9u);
  s.stats_buffer_head = 4000;
  EXPECT_FALSE((*d2)->restore(s)) << "a held head outside the queue";
  BalloonOptions other;
  auto d3 = BalloonDevice::create(other);
  ASSERT_TRUE(d3);
  EXPECT_FALSE((*d3)->restore(dev->save())) << "features differ";
}

TEST(Balloon, OffersFeaturesAsConfigured) {
  BalloonOptions o;
  auto plain = BalloonDevice::create(o);
  ASSERT_TRUE(plain);
  EXPECT_EQ((*plain)->device_type(), kTypeBalloon);
  EXPECT_EQ((*plain)->queue_max_sizes().size(), 3u);
  EXPECT_FALSE((*plain)->device_features() & bit(kBalloonFPageReporting));
  o.deflate_on_oom = true;
  o.free_page_reporting = true;
  auto full = BalloonDevice::create(o);
  ASSERT_TRUE(full);
  EXPECT_EQ((*full)->queue_max_sizes().size(), 4u);
  EXPECT_TRUE((*full)->device_features() & bit(kBalloonFDeflateOnOom));
  EXPECT_TRUE((*full)->device_features() & bit(kBalloonFPageReporting));
  EXPECT_STREQ(balloon_stat_name(BalloonStat::kAvailableMemory), "available_memory");
}

}  // namespace
}  // namespace vessel::vmm::virtio
