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
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void DeviceWorker::stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  thread_.join();
  uint64_t drained;  // re-arm for a later start()
  (void)!::read(stop_.get(), &drained, sizeof drained);
}

void DeviceWorker::run() {
  epoll_event evs[16];
  for (;;) {
    int n = ::epoll_wait(epoll_.get(), evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::error("virtio", cat(name_, ": epoll_wait failed: ", strerror(errno)));
      return;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t kind = evs[i].data.u64 >> 32;
      uint32_t value = static_cast<uint32_t>(evs[i].data.u64);
      if (kind == kStop) return;
      if (kind == kQueue) {
        uint64_t count;
        (void)!::read(t_.notify_fds()[value].get(), &count, sizeof count);
        t_.handle_notify(value);
      } else {
        t_.handle_event(static_cast<int>(value));
      }
    }
  }
}

}  // namespace vessel::vmm::virtio
