// PostcopyPager on real guest RAM (a memfd, userfaultfd; no KVM): a thread
// that reads a missing page waits until the page comes, and the page is
// asked for exactly once; a hole that is not missing reads as zero at once;
// a page with data that is not missing keeps it; pages that come unasked
// are installed; stop() lets a waiting thread go.
#include "vmm/migration/postcopy.h"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace vessel::vmm::migration {
namespace {

constexpr uint64_t kRam = 64 * kPageSize;

struct Asked {
  std::mutex mu;
  std::vector<uint64_t> offsets;
  size_t count() {
    std::lock_guard lock(mu);
    return offsets.size();
  }
};

bool wait_until(const std::function<bool()>& f) {
  for (int i = 0; i < 500; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

TEST(PostcopyPager, MissingPagesWaitForTheStreamAndHolesReadZero) {
  auto mem = GuestMemory::create_small_pages(kRam, 1ULL << 40, 1ULL << 41);
  ASSERT_TRUE(mem) << mem.error().message();
  // What earlier rounds left: data in pages 1, 3 and 7 (3 and 7 stale).
  for (uint64_t p : {1, 3, 7}) std::memset(mem->linear(p * kPageSize), static_cast<int>(p), kPageSize);
  std::vector<uint64_t> missing(1);
  missing[0] = (1ULL << 3) | (1ULL << 7) | (1ULL << 9);
  Asked asked;
  auto pager = PostcopyPager::start(*mem, missing, [&](uint64_t off) -> Status {
    std::lock_guard lock(asked.mu);
    asked.offsets.push_back(off);
    return ok();
  });
  if (!pager && pager.error().code() == EPERM) GTEST_SKIP() << "userfaultfd not permitted here: " << pager.error().message();
  ASSERT_TRUE(pager) << pager.error().message();
  EXPECT_EQ((*pager)->missing(), 3u);

  EXPECT_EQ(mem->linear(1 * kPageSize)[100], 1);  // data, not missing: as it was
  EXPECT_EQ(mem->linear(5 * kPageSize)[100], 0);  // a hole, not missing: zero at once
  EXPECT_GE((*pager)->zero_filled(), 1u);

  // A reader of page 3 waits (its stale copy is gone) until the page comes.
  auto reader = std::async(std::launch::async, [&] { return mem->linear(3 * kPageSize)[17]; });
  ASSERT_TRUE(wait_until([&] { return asked.count() == 1; })) << "page 3 was not asked for";
  EXPECT_EQ(reader.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout) << "read before it came";
  std::vector<uint8_t> page(kPageSize, 0xab);
  ASSERT_TRUE((*pager)->write_page(3 * kPageSize, page.data()));
  ASSERT_EQ(reader.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(reader.get(), 0xab);
  {
    std::lock_guard lock(asked.mu);
    EXPECT_EQ(asked.offsets, std::vector<uint64_t>{3 * kPageSize});
  }
  // Page 7 comes unasked (in order), page 9 as a zero page; a page sent
  // twice is left as it is.
  std::vector<uint8_t> seven(kPageSize, 0x70);
  ASSERT_TRUE((*pager)->write_page(7 * kPageSize, seven.data()));
  ASSERT_TRUE((*pager)->zero_pages(9 * kPageSize, 1));
  ASSERT_TRUE((*pager)->write_page(3 * kPageSize, seven.data()));
  EXPECT_EQ((*pager)->missing(), 0u);
  EXPECT_EQ(mem->linear(7 * kPageSize)[0], 0x70);
  EXPECT_EQ(mem->linear(9 * kPageSize)[0], 0);
  EXPECT_EQ(mem->linear(3 * kPageSize)[0], 0xab);
  EXPECT_EQ(asked.count(), 1u);
  EXPECT_TRUE((*pager)->fault_error());
  EXPECT_FALSE((*pager)->write_page(kRam, page.data()));  // outside RAM
  EXPECT_FALSE((*pager)->zero_pages(kRam - kPageSize, 2));
}

TEST(PostcopyPager, StopLetsAWaitingThreadGoOn) {
  auto mem = GuestMemory::create_small_pages(kRam, 1ULL << 40, 1ULL << 41);
  ASSERT_TRUE(mem) << mem.error().message();
  std::vector<uint64_t> missing(1, 1ULL << 4);
  auto pager = PostcopyPager::start(*mem, missing, [](uint64_t) -> Status { return Error::invalid("link down"); });
  if (!pager && pager.error().code() == EPERM) GTEST_SKIP() << "userfaultfd not permitted here: " << pager.error().message();
  ASSERT_TRUE(pager) << pager.error().message();
  auto reader = std::async(std::launch::async, [&] { return mem->linear(4 * kPageSize)[0]; });
  ASSERT_TRUE(wait_until([&] { return !(*pager)->fault_error(); }));
  auto e = (*pager)->fault_error();
  EXPECT_NE(e.error().message().find("link down"), std::string::npos);
  EXPECT_EQ(reader.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  (*pager)->stop();
  ASSERT_EQ(reader.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(reader.get(), 0);
}

TEST(PostcopyPager, RefusesABitmapThatDoesNotFit) {
  auto mem = GuestMemory::create_small_pages(kRam, 1ULL << 40, 1ULL << 41);
  ASSERT_TRUE(mem);
  auto p = PostcopyPager::start(*mem, std::vector<uint64_t>(2), [](uint64_t) { return ok(); });
  ASSERT_FALSE(p);
  EXPECT_NE(p.error().message().find("does not fit"), std::string::npos);
}

}  // namespace
}  // namespace vessel::vmm::migration
