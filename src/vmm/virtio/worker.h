// DeviceWorker: the thread that does a virtio device's work, off the vCPU
// threads. It waits (epoll) on the transport's queue-notify eventfds (which
// KVM signals through ioeventfd), the device's own fds (tap, rate-limiter
// timers) and a stop eventfd.
#pragma once

#include <memory>
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

  void start();
  // Signals the thread and joins it (idempotent). The queues are left as they
  // are: start() again continues where it stopped (pause / resume).
  void stop();

 private:
  DeviceWorker(MmioTransport& t, std::string name) : t_(t), name_(std::move(name)) {}
  void run();

  MmioTransport& t_;
  std::string name_;
  UniqueFd epoll_, stop_;
  std::thread thread_;
};

}  // namespace vessel::vmm::virtio
