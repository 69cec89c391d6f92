// Counter: a metric written by one thread (a vCPU, a device worker) and read
// by another (the VMM's metrics flush). Relaxed atomics: a reader sees some
// recent value, which is all a metric needs. Copyable, so that the types that
// hold one stay copyable and movable.
#pragma once

#include <atomic>
#include <cstdint>

namespace vessel::vmm {

class Counter {
 public:
  Counter() = default;
  Counter(const Counter& o) : v_(o.get()) {}
  Counter& operator=(const Counter& o) {
    v_.store(o.get(), std::memory_order_relaxed);
    return *this;
  }
  void add(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

}  // namespace vessel::vmm
