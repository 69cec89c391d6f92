#include "vmm/virtio/rate_limiter.h"

#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

namespace vessel::vmm::virtio {

void TokenBucket::refill(uint64_t now_ns) {
  if (unlimited()) return;
  if (last_ns_ != 0 && now_ns > last_ns_) {
    tokens_ += static_cast<double>(now_ns - last_ns_) * static_cast<double>(rate_) / 1e9;
    tokens_ = std::min(tokens_, static_cast<double>(rate_));
  }
  last_ns_ = now_ns;
}

uint64_t TokenBucket::wait_ns() const {
  if (has_tokens()) return 0;
  return static_cast<uint64_t>((-tokens_ + 1) * 1e9 / static_cast<double>(rate_)) + 1;
}

Status RateLimiter::init(bool always) {
  if (unlimited() && !always) return ok();
  int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) return Error::from_errno("timerfd_create");
  timer_.reset(fd);
  return ok();
}

uint64_t RateLimiter::now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

bool RateLimiter::admit(uint64_t now) {
  if (unlimited()) return true;
  if (blocked_) return false;  // the timer will unblock
  bytes_.refill(now);
  ops_.refill(now);
  if (bytes_.has_tokens() && ops_.has_tokens()) return true;
  uint64_t wait = std::max(bytes_.wait_ns(), ops_.wait_ns());
  blocked_ = true;
  throttled_.add();
  if (timer_) {
    itimerspec its{};
    its.it_value.tv_sec = static_cast<time_t>(wait / 1000000000ULL);
    its.it_value.tv_nsec = static_cast<long>(wait % 1000000000ULL);
    ::timerfd_settime(timer_.get(), 0, &its, nullptr);
  }
  return false;
}

void RateLimiter::set_rates(uint64_t bytes_per_sec, uint64_t ops_per_sec) {
  bytes_ = TokenBucket(bytes_per_sec);
  ops_ = TokenBucket(ops_per_sec);
  if (blocked_ && timer_) {
    itimerspec its{};
    its.it_value.tv_nsec = 1;  // the worker runs the queue again
    ::timerfd_settime(timer_.get(), 0, &its, nullptr);
  } else {
    blocked_ = false;
  }
}

void RateLimiter::timer_fired() {
  uint64_t n;
  if (timer_) (void)!::read(timer_.get(), &n, sizeof n);
  blocked_ = false;
}

}  // namespace vessel::vmm::virtio
