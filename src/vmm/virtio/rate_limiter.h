// RateLimiter: per-device token buckets for bandwidth (bytes/s) and
// operations (IOPS). A request is admitted while both buckets hold tokens;
// it then takes its cost, possibly going into debt, and the next request
// waits until the debt is repaid. The device stops processing while
// blocked and resumes when the limiter's timerfd fires.
#pragma once

#include <cstdint>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/counter.h"

namespace vessel::vmm::virtio {

// Refills `rate` tokens per second up to a burst of one second's worth; rate 0 = unlimited.
class TokenBucket {
 public:
  explicit TokenBucket(uint64_t rate = 0) : rate_(rate), tokens_(static_cast<double>(rate)) {}
  bool unlimited() const { return rate_ == 0; }
  // Refills for the time since the last call.
  void refill(uint64_t now_ns);
  bool has_tokens() const { return unlimited() || tokens_ > 0; }
  void take(uint64_t n) { if (!unlimited()) tokens_ -= static_cast<double>(n); }
  // Nanoseconds until has_tokens() (0 when it has).
  uint64_t wait_ns() const;
  double tokens() const { return tokens_; }

 private:
  uint64_t rate_;
  double tokens_;
  uint64_t last_ns_ = 0;
};

class RateLimiter {
 public:
  RateLimiter(uint64_t bytes_per_sec = 0, uint64_t ops_per_sec = 0) : bytes_(bytes_per_sec), ops_(ops_per_sec) {}
  // Creates the timerfd (only for a limited device, unless `always`: a
  // device whose limits may be set later, e.g. by PATCH /drives, needs its
  // timer watched from the start).
  Status init(bool always = false);
  bool unlimited() const { return bytes_.unlimited() && ops_.unlimited(); }
  int timer_fd() const { return timer_.get(); }

  // Whether a request may go now; when not, arms the timer for when it may.
  bool admit(uint64_t now_ns);
  void consume(uint64_t bytes, uint64_t ops = 1) {
    bytes_.take(bytes);
    ops_.take(ops);
  }
  // Drains the timer after it fired.
  void timer_fired();
  bool blocked() const { return blocked_; }
  // Replaces the rates (0: unlimited) with full buckets; a blocked limiter is
  // unblocked through its timer (fired at once), so the device's worker goes
  // on with its queue. Call where the device's requests are served (its lock).
  void set_rates(uint64_t bytes_per_sec, uint64_t ops_per_sec);
  // How many times a request had to wait (Firecracker's *_rate_limiter_throttled).
  uint64_t throttled() const { return throttled_.get(); }
  static uint64_t now_ns();

 private:
  TokenBucket bytes_, ops_;
  UniqueFd timer_;
  bool blocked_ = false;
  Counter throttled_;
};

}  // namespace vessel::vmm::virtio
