// DeviceWorker: the thread that does a virtio device's work, off the vCPU
// threads. It waits (epoll) on the transport's queue-notify eventfds (which
// KVM signals through ioeventfd), the device's own fds (tap, rate-limiter
// timers) and a stop eventfd.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/virtio/mmio.h"

namespace vessel::vmm::virtio {

class DeviceWorker {
 public:
  static Result<std::unique_ptr<DeviceWorker>> create(MmioTransport& transport, std::string name);
  ~DeviceWorker() { stop(); }

  // Starts the thread, or lets a paused one go on.
  void start();
  // Returns once the thread waits outside the device (it handles the events
  // it already took first; the queues are left as they are): a paused
  // machine's devices touch neither guest memory nor their queues. The
  // thread stays, so start() is a wake-up, not a thread creation (both are
  // in a migration's downtime). Nothing when it is not running.
  void pause();
  // Signals the thread and joins it (idempotent). The queues are left as they
  // are: start() again continues where it stopped.
  void stop();

 private:
  DeviceWorker(MmioTransport& t, std::string name) : t_(t), name_(std::move(name)) {}
  void run();
  // In the thread, after the stop eventfd fired: false when it must end.
  bool park();
  void signal();

  MmioTransport& t_;
  std::string name_;
  UniqueFd epoll_, stop_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool pause_requested_ = false, parked_ = false, exit_ = false;  // guarded by mu_
};

}  // namespace vessel::vmm::virtio
