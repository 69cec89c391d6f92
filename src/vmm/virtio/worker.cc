#include "vmm/virtio/worker.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/strings.h"

namespace vessel::vmm::virtio {

namespace {
enum : uint64_t { kStop = 0, kQueue = 1, kDeviceFd = 2 };
uint64_t tag(uint64_t kind, uint64_t value) { return kind << 32 | value; }

Status watch(int epfd, int fd, uint32_t events, uint64_t data) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = data;
  if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return Error::from_errno("epoll_ctl");
  return ok();
}
}  // namespace

Result<std::unique_ptr<DeviceWorker>> DeviceWorker::create(MmioTransport& t, std::string name) {
  std::unique_ptr<DeviceWorker> w(new DeviceWorker(t, std::move(name)));
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return Error::from_errno("epoll_create1");
  w->epoll_.reset(ep);
  int s = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s < 0) return Error::from_errno("eventfd");
  w->stop_.reset(s);
  TRY(watch(ep, s, EPOLLIN, tag(kStop, 0)));
  const auto& fds = t.notify_fds();
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!fds[i]) return Error::from_errno("queue notify eventfd");
    TRY(watch(ep, fds[i].get(), EPOLLIN, tag(kQueue, i)));
  }
  // Device fds are edge-triggered: the device reads them until EAGAIN, or stops
  // (no receive buffer) and resumes on the next queue notification.
  for (int fd : t.device().event_fds()) TRY(watch(ep, fd, EPOLLIN | EPOLLET, tag(kDeviceFd, static_cast<uint32_t>(fd))));
  return w;
}

void DeviceWorker::start() {
  if (!thread_.joinable()) {
    thread_ = std::thread([this] { run(); });
    return;
  }
  {
    std::lock_guard lock(mu_);
    pause_requested_ = false;
  }
  cv_.notify_all();
}

void DeviceWorker::signal() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
}

void DeviceWorker::pause() {
  if (!thread_.joinable()) return;
  std::unique_lock lock(mu_);
  if (pause_requested_) return;
  pause_requested_ = true;
  signal();
  cv_.wait(lock, [this] { return parked_ || exit_; });
}

void DeviceWorker::stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    exit_ = true;
  }
  cv_.notify_all();
  signal();
  thread_.join();
  uint64_t drained;  // re-arm for a later start()
  (void)!::read(stop_.get(), &drained, sizeof drained);
  std::lock_guard lock(mu_);
  exit_ = pause_requested_ = parked_ = false;
}

bool DeviceWorker::park() {
  uint64_t drained;
  (void)!::read(stop_.get(), &drained, sizeof drained);
  std::unique_lock lock(mu_);
  if (exit_) return false;
  if (!pause_requested_) return true;
  parked_ = true;
  cv_.notify_all();
  cv_.wait(lock, [this] { return !pause_requested_ || exit_; });
  parked_ = false;
  return !exit_;
}

void DeviceWorker::run() {
  epoll_event evs[16];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::error("virtio", cat(name_, ": epoll_wait failed: ", strerror(errno)));
      std::lock_guard lock(mu_);
      parked_ = true;  // a pause() must not wait for it
      cv_.notify_all();
      return;
    }
    // The stop eventfd last: the device events of this batch are handled
    // first (an edge-triggered one would not come again).
    bool stop_seen = false;
    for (int i = 0; i < n; ++i) {
      uint64_t kind = evs[i].data.u64 >> 32;
      uint32_t value = static_cast<uint32_t>(evs[i].data.u64);
      if (kind == kStop) {
        stop_seen = true;
      } else if (kind == kQueue) {
        uint64_t count;
        (void)!::read(t_.notify_fds()[value].get(), &count, sizeof count);
        t_.handle_notify(value);
      } else {
        t_.handle_event(static_cast<int>(value));
      }
    }
    if (stop_seen && !park()) return;
  }
}

}  // namespace vessel::vmm::virtio
