#include "vmm/virtio/balloon/balloon.h"

#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {

namespace {
// Queue order when every queue is present (5.5.2); absent queues shift the later ones down.
constexpr unsigned kInflate = 0, kDeflate = 1;
// One statistics entry on the wire: le16 tag, le64 value, packed.
constexpr size_t kStatEntrySize = 10;
// PFNs are read in chunks of this many.
constexpr size_t kPfnChunk = 256;
}  // namespace

const char* balloon_stat_name(BalloonStat s) {
  switch (s) {
    case BalloonStat::kSwapIn: return "swap_in";
    case BalloonStat::kSwapOut: return "swap_out";
    case BalloonStat::kMajorFaults: return "major_faults";
    case BalloonStat::kMinorFaults: return "minor_faults";
    case BalloonStat::kFreeMemory: return "free_memory";
    case BalloonStat::kTotalMemory: return "total_memory";
    case BalloonStat::kAvailableMemory: return "available_memory";
    case BalloonStat::kDiskCaches: return "disk_caches";
    case BalloonStat::kHugetlbAllocations: return "hugetlb_allocations";
    case BalloonStat::kHugetlbFailures: return "hugetlb_failures";
  }
  return "?";
}

Result<std::unique_ptr<BalloonDevice>> BalloonDevice::create(const BalloonOptions& options) {
  int t = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (t < 0) return Error::from_errno("timerfd_create");
  std::unique_ptr<BalloonDevice> d(new BalloonDevice(options, UniqueFd(t)));
  return d;  // the polling timer is armed when the driver is ready (activate)
}

BalloonDevice::BalloonDevice(const BalloonOptions& o, UniqueFd timer)
    : options_(o), timer_(std::move(timer)), target_(o.target_pages) {}

uint64_t BalloonDevice::device_features() const {
  // The statistics queue is always offered so that polling can be turned on later.
  uint64_t f = bit(kBalloonFStatsVq);
  if (options_.deflate_on_oom) f |= bit(kBalloonFDeflateOnOom);
  if (options_.free_page_reporting) f |= bit(kBalloonFPageReporting);
  return f;
}

std::vector<uint16_t> BalloonDevice::queue_max_sizes() const {
  std::vector<uint16_t> q{kQueueSize, kQueueSize, kQueueSize};
  if (options_.free_page_reporting) q.push_back(kQueueSize);
  return q;
}

BalloonDevice::Role BalloonDevice::role(unsigned index, uint64_t acked) const {
  // A driver numbers only the queues of the features it accepted (e.g. Linux:
  // without STATS_VQ the reporting queue is the third).
  unsigned next = 2;
  if (acked & bit(kBalloonFStatsVq)) {
    if (index == next) return Role::kStats;
    ++next;
  }
  if ((acked & bit(kBalloonFPageReporting)) && index == next) return Role::kReporting;
  if (index == kInflate) return Role::kInflate;
  if (index == kDeflate) return Role::kDeflate;
  return Role::kNone;
}

void BalloonDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
  // le32 num_pages, le32 actual, le32 free_page_hint_cmd_id, le32 poison_val.
  uint8_t cfg[16] = {};
  uint32_t target = target_.load(), actual = actual_.load();
  std::memcpy(cfg, &target, 4);
  std::memcpy(cfg + 4, &actual, 4);
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof cfg ? cfg[offset + i] : 0;
}

void BalloonDevice::write_config(uint64_t offset, std::span<const uint8_t> data) {
  // Only `actual` is driver-writable; a 4-byte write is what drivers do.
  if (offset != 4 || data.size() != 4) return;
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  actual_.store(v);
}

Status BalloonDevice::activate(DeviceHost& host) {
  stats_queue_ = (host.acked_features() & bit(kBalloonFStatsVq)) ? 2 : ~0u;
  host_.store(&host);
  // Polling starts now. A periodic timerfd that is not read does not fire again
  // (the kernel re-arms it on read), and the transport ignores its expiries
  // before DRIVER_OK: arming it afresh here keeps a timer that expired during
  // the guest's boot from going silent for good.
  return arm_timer(stats_interval());
}

void BalloonDevice::reset() {
  host_.store(nullptr);
  actual_.store(0);
  (void)arm_timer(0);  // no polling until the driver is ready again
  std::lock_guard lock(mu_);
  held_stats_head_.reset();
}

void BalloonDevice::set_target_pages(uint32_t pages) {
  target_.store(pages);
  if (DeviceHost* h = host_.load()) h->notify_config();
}

Status BalloonDevice::arm_timer(uint32_t seconds) {
  itimerspec its{};
  its.it_value.tv_sec = seconds;
  its.it_interval.tv_sec = seconds;
  if (::timerfd_settime(timer_.get(), 0, &its, nullptr) < 0) return Error::from_errno("timerfd_settime");
  return ok();
}

Status BalloonDevice::set_stats_interval(uint32_t seconds) {
  TRY(arm_timer(seconds));
  std::lock_guard lock(mu_);
  options_.stats_interval_s = seconds;
  return ok();
}

uint32_t BalloonDevice::stats_interval() const {
  std::lock_guard lock(mu_);
  return options_.stats_interval_s;
}

BalloonStatValues BalloonDevice::statistics() const {
  std::lock_guard lock(mu_);
  return stats_;
}

BalloonCounters BalloonDevice::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void BalloonDevice::discard(uint8_t* host, uint64_t len) {
  auto start = reinterpret_cast<uintptr_t>(host);
  uintptr_t first = (start + kBalloonPageSize - 1) & ~(kBalloonPageSize - 1);
  uintptr_t last = (start + len) & ~(kBalloonPageSize - 1);
  if (last <= first) return;
  void* p = reinterpret_cast<void*>(first);
  // MADV_REMOVE frees the memfd's pages (a shared mapping); a private mapping
  // of a snapshot file refuses it, and MADV_DONTNEED drops the private copies.
  if (::madvise(p, last - first, MADV_REMOVE) == 0) return;
  if (::madvise(p, last - first, MADV_DONTNEED) == 0) return;
  std::lock_guard lock(mu_);
  ++counters_.discard_errors;
}

Status BalloonDevice::process_pfns(DeviceHost& host, unsigned index, bool inflate) {
  Queue& q = host.queue(index);
  GuestMemory& mem = host.memory();
  bool used = false;
  do {
    while (auto chain = TRY(q.pop(mem))) {
      uint32_t pfns[kPfnChunk];
      uint64_t offset = 0, good = 0, bad = 0;
      // Runs of consecutive PFNs are discarded with one madvise.
      uint8_t* run_start = nullptr;
      uint64_t run_len = 0;
      for (;;) {
        size_t got = copy_from_chain(*chain, offset, std::span<uint8_t>(reinterpret_cast<uint8_t*>(pfns), sizeof pfns));
        size_t n = got / sizeof(uint32_t);
        if (n == 0) break;
        offset += n * sizeof(uint32_t);
        for (size_t i = 0; i < n; ++i) {
          uint64_t gpa = static_cast<uint64_t>(pfns[i]) * kBalloonPageSize;
          uint8_t* h = mem.host_ptr(gpa, kBalloonPageSize);
          if (!h) {
            ++bad;
            continue;
          }
          ++good;
          if (!inflate) continue;
          if (run_start && h == run_start + run_len) {
            run_len += kBalloonPageSize;
          } else {
            if (run_start) discard(run_start, run_len);
            run_start = h;
            run_len = kBalloonPageSize;
          }
        }
        if (got < sizeof pfns) break;
      }
      if (run_start) discard(run_start, run_len);
      {
        std::lock_guard lock(mu_);
        (inflate ? counters_.inflated_pages : counters_.deflated_pages) += good;
        counters_.invalid_pfns += bad;
      }
      if (bad) log::warn("virtio", cat("balloon: ignored ", bad, " page frame numbers outside guest RAM"));
      TRY(q.add_used(chain->head, 0));
      used = true;
    }
  } while (q.enable_notification());
  if (used) host.notify_used(index);
  return ok();
}

Status BalloonDevice::process_stats(DeviceHost& host, unsigned index) {
  Queue& q = host.queue(index);
  bool used = false;
  do {
  while (auto chain = TRY(q.pop(host.memory()))) {
    uint8_t buf[kStatEntrySize * 32];
    size_t got = copy_from_chain(*chain, 0, std::span<uint8_t>(buf, sizeof buf));
    std::lock_guard lock(mu_);
    for (size_t at = 0; at + kStatEntrySize <= got; at += kStatEntrySize) {
      uint16_t tag;
      uint64_t value;
      std::memcpy(&tag, buf + at, 2);
      std::memcpy(&value, buf + at + 2, 8);
      if (tag < kBalloonStatCount) stats_[tag] = value;  // unknown tags are skipped (newer drivers)
    }
    ++counters_.stats_received;
    // The driver posts one buffer; a second one makes us return the first.
    if (held_stats_head_) {
      TRY(q.add_used(*held_stats_head_, 0));
      used = true;
    }
    held_stats_head_ = chain->head;
  }
  } while (q.enable_notification());
  if (used) host.notify_used(index);
  return ok();
}

Status BalloonDevice::process_reports(DeviceHost& host, unsigned index) {
  Queue& q = host.queue(index);
  bool used = false;
  do {
    while (auto chain = TRY(q.pop(host.memory()))) {
      uint64_t bytes = 0;
      // The queue has checked that every segment lies in guest RAM.
      for (const Segment& s : chain->segments) {
        discard(s.host, s.len);
        bytes += s.len;
      }
      {
        std::lock_guard lock(mu_);
        counters_.reported_bytes += bytes;
      }
      TRY(q.add_used(chain->head, 0));
      used = true;
    }
  } while (q.enable_notification());
  if (used) host.notify_used(index);
  return ok();
}

Status BalloonDevice::process_queue(DeviceHost& host, unsigned index) {
  switch (role(index, host.acked_features())) {
    case Role::kInflate: return process_pfns(host, index, true);
    case Role::kDeflate: return process_pfns(host, index, false);
    case Role::kStats: return process_stats(host, index);
    case Role::kReporting: return process_reports(host, index);
    case Role::kNone: return Error::invalid(cat("balloon: notification of queue ", index, ", which the driver did not negotiate"));
  }
  return ok();
}

Status BalloonDevice::process_event(DeviceHost& host, int fd) {
  uint64_t expirations;
  while (::read(timer_.get(), &expirations, sizeof expirations) > 0) {
  }
  // Polling: hand the driver's buffer back; it refills it with fresh statistics.
  std::optional<uint16_t> head;
  {
    std::lock_guard lock(mu_);
    if (stats_queue_ == ~0u || !held_stats_head_) return ok();
    head = held_stats_head_;
    held_stats_head_.reset();
    ++counters_.stats_polls;
  }
  TRY(host.queue(stats_queue_).add_used(*head, 0));
  host.notify_used(stats_queue_);
  return ok();
}

BalloonState BalloonDevice::save() const {
  std::lock_guard lock(mu_);
  BalloonState s;
  s.options = options_;
  s.options.target_pages = target_.load();
  s.actual_pages = actual_.load();
  s.stats = stats_;
  s.stats_buffer_held = held_stats_head_.has_value();
  s.stats_buffer_head = held_stats_head_.value_or(0);
  s.counters = counters_;
  return s;
}

Status BalloonDevice::restore(const BalloonState& s) {
  if (s.options.free_page_reporting != options_.free_page_reporting || s.options.deflate_on_oom != options_.deflate_on_oom)
    return Error::invalid("balloon: saved features differ from the device's");
  if (s.stats_buffer_held && s.stats_buffer_head >= kQueueSize)
    return Error::invalid(cat("balloon: saved statistics buffer head ", s.stats_buffer_head, " is outside the queue"));
  TRY(arm_timer(s.options.stats_interval_s));
  std::lock_guard lock(mu_);
  options_ = s.options;
  target_.store(s.options.target_pages);
  actual_.store(s.actual_pages);
  stats_ = s.stats;
  held_stats_head_.reset();
  if (s.stats_buffer_held) held_stats_head_ = s.stats_buffer_head;
  counters_ = s.counters;
  return ok();
}

}  // namespace vessel::vmm::virtio
