// BalloonDevice: virtio-balloon (virtio 1.2, 5.5) for memory overcommit.
//
// The host sets a target (pages the guest should give up); the guest's
// driver inflates the balloon by handing page frame numbers on the inflate
// queue, and the device discards those pages from the VMM's mapping of
// guest RAM (MADV_REMOVE on the shared memfd, MADV_DONTNEED on a private
// mapping), so the host gets the memory back. Deflated pages fault back in
// (zero-filled) when the guest touches them again.
//
// Also: the statistics queue (the driver's memory statistics, polled every
// `stats_interval_s` seconds by returning the buffer it posted) and free
// page reporting (VIRTIO_BALLOON_F_PAGE_REPORTING: the guest reports free
// ranges, which are discarded at once, without any target).
//
// Every PFN and range comes from the guest: a PFN outside guest RAM is
// counted and ignored, never acted on; ranges are checked by the queue.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/virtio/device.h"

namespace vessel::vmm::virtio {

inline constexpr uint32_t kTypeBalloon = 5;

// Feature bits (5.5.3).
inline constexpr unsigned kBalloonFMustTellHost = 0;
inline constexpr unsigned kBalloonFStatsVq = 1;
inline constexpr unsigned kBalloonFDeflateOnOom = 2;
inline constexpr unsigned kBalloonFPageReporting = 5;

// The balloon's unit: 4 KiB pages, whatever the guest's page size.
inline constexpr uint64_t kBalloonPageSize = 4096;

// The statistics tags of 5.5.6.3, in tag order.
enum class BalloonStat : uint16_t {
  kSwapIn = 0,
  kSwapOut = 1,
  kMajorFaults = 2,
  kMinorFaults = 3,
  kFreeMemory = 4,
  kTotalMemory = 5,
  kAvailableMemory = 6,
  kDiskCaches = 7,
  kHugetlbAllocations = 8,
  kHugetlbFailures = 9,
};
inline constexpr size_t kBalloonStatCount = 10;

// The last statistics the driver sent: a value per tag, absent until sent.
using BalloonStatValues = std::array<std::optional<uint64_t>, kBalloonStatCount>;

struct BalloonOptions {
  uint32_t target_pages = 0;
  // Offer VIRTIO_BALLOON_F_DEFLATE_ON_OOM: the guest may deflate under memory pressure.
  bool deflate_on_oom = false;
  // 0: statistics are not polled.
  uint32_t stats_interval_s = 0;
  // Offer VIRTIO_BALLOON_F_PAGE_REPORTING.
  bool free_page_reporting = false;
};

// Counters of what the guest did with the balloon (metrics, tests).
struct BalloonCounters {
  uint64_t inflated_pages = 0;   // PFNs discarded from the inflate queue
  uint64_t deflated_pages = 0;   // PFNs returned on the deflate queue
  uint64_t reported_bytes = 0;   // bytes discarded by free page reporting
  uint64_t invalid_pfns = 0;     // PFNs outside guest RAM, ignored
  uint64_t discard_errors = 0;   // madvise failures
  uint64_t stats_received = 0;   // statistics buffers the driver sent
  uint64_t stats_polls = 0;      // buffers handed back to ask for fresh statistics
};

// Everything a snapshot needs of the device.
struct BalloonState {
  BalloonOptions options;
  uint32_t actual_pages = 0;
  BalloonStatValues stats;
  bool stats_buffer_held = false;
  uint16_t stats_buffer_head = 0;
  BalloonCounters counters;
};

class BalloonDevice : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;

  static Result<std::unique_ptr<BalloonDevice>> create(const BalloonOptions& options);

  uint32_t device_type() const override { return kTypeBalloon; }
  uint64_t device_features() const override;
  // inflate, deflate, stats and (when offered) reporting.
  std::vector<uint16_t> queue_max_sizes() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  void write_config(uint64_t offset, std::span<const uint8_t> data) override;
  Status activate(DeviceHost& host) override;
  Status process_queue(DeviceHost& host, unsigned index) override;
  std::vector<int> event_fds() const override { return {timer_.get()}; }
  Status process_event(DeviceHost& host, int fd) override;
  void reset() override;

  // Host side (API thread). A new target raises a configuration-change
  // interrupt once the driver is running.
  void set_target_pages(uint32_t pages);
  uint32_t target_pages() const { return target_.load(); }
  // Pages the driver says the balloon holds (its `actual` config field).
  uint32_t actual_pages() const { return actual_.load(); }
  // Changes the statistics polling period (0 stops polling).
  Status set_stats_interval(uint32_t seconds);
  uint32_t stats_interval() const;
  BalloonStatValues statistics() const;
  BalloonCounters counters() const;

  BalloonState save() const;
  // Restores the options, driver-visible config and statistics (before the transport is restored).
  Status restore(const BalloonState& s);

 private:
  enum class Role { kInflate, kDeflate, kStats, kReporting, kNone };
  explicit BalloonDevice(const BalloonOptions& o, UniqueFd timer);
  Role role(unsigned index, uint64_t acked) const;
  Status process_pfns(DeviceHost& host, unsigned index, bool inflate);
  Status process_stats(DeviceHost& host, unsigned index);
  Status process_reports(DeviceHost& host, unsigned index);
  // Discards [host, host+len) of guest RAM (whole pages inside it).
  void discard(uint8_t* host, uint64_t len);
  Status arm_timer(uint32_t seconds);

  BalloonOptions options_;
  UniqueFd timer_;
  std::atomic<uint32_t> target_;
  std::atomic<uint32_t> actual_{0};
  std::atomic<DeviceHost*> host_{nullptr};
  mutable std::mutex mu_;  // stats, held buffer, counters
  BalloonStatValues stats_;
  std::optional<uint16_t> held_stats_head_;
  unsigned stats_queue_ = 0;
  BalloonCounters counters_;
};

// Firecracker's name of each statistics tag (swap_in, free_memory, ...).
const char* balloon_stat_name(BalloonStat s);

}  // namespace vessel::vmm::virtio
