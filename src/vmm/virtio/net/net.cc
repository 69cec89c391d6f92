#include "vmm/virtio/net/net.h"

#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {

using namespace netdev;

Result<std::unique_ptr<NetDevice>> NetDevice::create(const NetOptions& opts) {
  auto tap = std::make_unique<net::Tap>(TRY(net::Tap::open(opts.tap, kHdrSize)));
  return create(UniqueFd(), opts, std::move(tap));
}

Result<std::unique_ptr<NetDevice>> NetDevice::create_on_tap_fd(const NetOptions& opts, UniqueFd tap_fd) {
  auto tap = std::make_unique<net::Tap>(TRY(net::Tap::adopt(std::move(tap_fd), opts.tap, kHdrSize)));
  return create(UniqueFd(), opts, std::move(tap));
}

Result<std::unique_ptr<NetDevice>> NetDevice::create(UniqueFd fd, const NetOptions& opts, std::unique_ptr<net::Tap> tap) {
  std::unique_ptr<NetDevice> d(new NetDevice());
  d->fd_ = std::move(fd);
  d->tap_ = std::move(tap);
  if (d->tap_) d->offload_ = d->tap_->supports_offload(net::kTunCsum | net::kTunTso4 | net::kTunTso6);
  d->mac_ = opts.mac;
  if (!opts.mac_set) {
    if (::getrandom(d->mac_.data(), d->mac_.size(), 0) != static_cast<ssize_t>(d->mac_.size()))
      return Error::from_errno("getrandom for a MAC address");
    d->mac_[0] = static_cast<uint8_t>((d->mac_[0] & 0xfe) | 0x02);  // unicast, locally administered
  }
  d->tx_limiter_ = RateLimiter(opts.bandwidth, opts.iops);
  d->rx_limiter_ = RateLimiter(opts.bandwidth, opts.iops);
  TRY(d->tx_limiter_.init());
  TRY(d->rx_limiter_.init());
  return d;
}

uint32_t NetDevice::device_type() const { return kTypeNet; }

uint64_t NetDevice::device_features() const {
  uint64_t f = bit(kFMac);
  if (offload_)
    f |= bit(kFCsum) | bit(kFGuestCsum) | bit(kFGuestTso4) | bit(kFGuestTso6) | bit(kFHostTso4) | bit(kFHostTso6);
  return f;
}

void NetDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < mac_.size() ? mac_[offset + i] : 0;
}

Status NetDevice::activate(DeviceHost& host) {
  pending_len_ = 0;
  if (tap_) {
    uint64_t f = host.acked_features();
    unsigned flags = 0;
    if (f & bit(kFGuestCsum)) {
      flags |= net::kTunCsum;
      if (f & bit(kFGuestTso4)) flags |= net::kTunTso4;
      if (f & bit(kFGuestTso6)) flags |= net::kTunTso6;
    }
    TRY(tap_->set_offload(flags));
  }
  // Frames may already be waiting: the tap is watched edge-triggered.
  return receive(host);
}

namespace {
int data_fd(const UniqueFd& fd, const std::unique_ptr<net::Tap>& tap) { return tap ? tap->fd() : fd.get(); }
}  // namespace

std::vector<int> NetDevice::event_fds() const {
  std::vector<int> fds{data_fd(fd_, tap_)};
  if (tx_limiter_.timer_fd() >= 0) fds.push_back(tx_limiter_.timer_fd());
  if (rx_limiter_.timer_fd() >= 0) fds.push_back(rx_limiter_.timer_fd());
  return fds;
}

Status NetDevice::process_event(DeviceHost& host, int fd) {
  if (fd == tx_limiter_.timer_fd()) {
    tx_limiter_.timer_fired();
    return transmit(host);
  }
  if (fd == rx_limiter_.timer_fd()) rx_limiter_.timer_fired();
  return receive(host);
}

Status NetDevice::process_queue(DeviceHost& host, unsigned index) {
  (index == 0 ? rx_queue_events_ : tx_queue_events_).add();
  return index == 0 ? receive(host) : transmit(host);
}

void NetDevice::report_metrics(const MetricFn& put) const {
  put("rx_packets_count", rx_packets_.get());
  put("rx_bytes_count", rx_bytes_.get());
  put("tx_packets_count", tx_packets_.get());
  put("tx_bytes_count", tx_bytes_.get());
  put("rx_queue_event_count", rx_queue_events_.get());
  put("tx_queue_event_count", tx_queue_events_.get());
  put("rx_partial_writes", rx_dropped_.get());  // frames that did not fit the guest's buffer
  put("rx_rate_limiter_throttled", rx_limiter_.throttled());
  put("tx_rate_limiter_throttled", tx_limiter_.throttled());
}

Status NetDevice::receive(DeviceHost& host) {
  Queue& q = host.queue(0);
  if (!q.active()) return ok();
  const int fd = data_fd(fd_, tap_);
  bool used = false;
  for (;;) {
    if (pending_len_ == 0) {
      if (!rx_limiter_.admit(RateLimiter::now_ns())) break;
      ssize_t n = ::read(fd, frame_.data(), frame_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // EAGAIN: the next edge wakes us
      if (static_cast<size_t>(n) < kHdrSize) continue;
      pending_len_ = static_cast<size_t>(n);
      uint16_t one = 1;
      std::memcpy(&frame_[10], &one, 2);  // num_buffers
    }
    auto chain = TRY(q.pop(host.memory()));
    if (!chain) {
      if (q.enable_notification()) continue;
      break;  // wait for the driver to add receive buffers
    }
    uint32_t len = 0;
    if (chain->writable_bytes >= pending_len_) {
      copy_to_chain(*chain, 0, std::span<const uint8_t>(frame_.data(), pending_len_));
      len = static_cast<uint32_t>(pending_len_);
      rx_packets_.add();
      rx_bytes_.add(pending_len_ - kHdrSize);
    } else {
      rx_dropped_.add();  // the frame does not fit: dropped, the buffer returned empty
    }
    rx_limiter_.consume(pending_len_);
    pending_len_ = 0;
    TRY(q.add_used(chain->head, len));
    used = true;
  }
  if (used) host.notify_used(0);
  return ok();
}

Status NetDevice::transmit(DeviceHost& host) {
  Queue& q = host.queue(1);
  if (!q.active()) return ok();
  const int fd = data_fd(fd_, tap_);
  bool used = false;
  bool more = true;
  std::vector<iovec> iov;
  while (more) {
    while (tx_limiter_.admit(RateLimiter::now_ns())) {
      auto chain = TRY(q.pop(host.memory()));
      if (!chain) break;
      iov.clear();
      for (const Segment& s : chain->segments)
        if (!s.writable && s.len) iov.push_back({s.host, s.len});
      if (chain->readable_bytes >= kHdrSize && chain->readable_bytes <= kMaxFrame) {
        ssize_t n;
        do n = ::writev(fd, iov.data(), static_cast<int>(iov.size()));
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN) log::debug("virtio-net", "tap write failed; frame dropped");
        if (n > 0) {
          tx_packets_.add();
          tx_bytes_.add(chain->readable_bytes - kHdrSize);
        }
      }
      tx_limiter_.consume(chain->readable_bytes);
      TRY(q.add_used(chain->head, 0));
      used = true;
    }
    more = !tx_limiter_.blocked() && q.enable_notification();
  }
  if (used) host.notify_used(1);
  return ok();
}

}  // namespace vessel::vmm::virtio
