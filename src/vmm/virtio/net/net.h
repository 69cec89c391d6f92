// NetDevice: virtio-net (virtio 1.x, 5.1) over a host tap with virtio-net
// headers. Queue 0 receives (tap -> guest), queue 1 transmits. Checksum and
// TSO offloads are offered when the tap supports them and switched on in the
// tap (TUNSETOFFLOAD) for what the driver accepted. Without MRG_RXBUF each
// received frame goes into one descriptor chain.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "vmm/net/tap.h"
#include "vmm/virtio/device.h"
#include "vmm/virtio/rate_limiter.h"

namespace vessel::vmm::virtio {

namespace netdev {
inline constexpr unsigned kFCsum = 0, kFGuestCsum = 1, kFMac = 5, kFGuestTso4 = 7, kFGuestTso6 = 8, kFHostTso4 = 11,
                          kFHostTso6 = 12;
inline constexpr size_t kHdrSize = 12;  // virtio_net_hdr_v1 (with num_buffers)
inline constexpr uint16_t kQueueSize = 256;
inline constexpr size_t kMaxFrame = 65562;  // 64 KiB GSO frame + Ethernet + header
}  // namespace netdev

using MacAddress = std::array<uint8_t, 6>;

struct NetOptions {
  std::string tap;
  MacAddress mac{};
  bool mac_set = false;  // else a random locally administered address
  uint64_t bandwidth = 0;
  uint64_t iops = 0;  // packets/s
};

// Device-specific state saved with the transport's.
struct NetState {
  MacAddress mac{};
};

class NetDevice : public VirtioDevice {
 public:
  // Opens tap `opts.tap`.
  static Result<std::unique_ptr<NetDevice>> create(const NetOptions& opts);
  // Over an open tap file handed over by another VMM (vm upgrade).
  static Result<std::unique_ptr<NetDevice>> create_on_tap_fd(const NetOptions& opts, UniqueFd tap_fd);
  // The tap's file (-1 without a tap), to hand over.
  int tap_fd() const { return tap_ ? tap_->fd() : -1; }
  // Over a datagram fd carrying frames with virtio-net headers (tests: a socketpair), or over `tap`.
  static Result<std::unique_ptr<NetDevice>> create(UniqueFd fd, const NetOptions& opts, std::unique_ptr<net::Tap> tap);

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override { return {netdev::kQueueSize, netdev::kQueueSize}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  Status activate(DeviceHost& host) override;
  Status process_queue(DeviceHost& host, unsigned index) override;
  std::vector<int> event_fds() const override;
  Status process_event(DeviceHost& host, int fd) override;
  void reset() override { pending_len_ = 0; }
  void report_metrics(const MetricFn& put) const override;

  NetState save() const { return {mac_}; }
  void restore(const NetState& s) { mac_ = s.mac; }
  const MacAddress& mac() const { return mac_; }

 private:
  NetDevice() = default;
  Status receive(DeviceHost& host);
  Status transmit(DeviceHost& host);

  UniqueFd fd_;  // the tap's fd or a test socket; owned here when no tap
  std::unique_ptr<net::Tap> tap_;
  MacAddress mac_{};
  bool offload_ = false;
  RateLimiter tx_limiter_, rx_limiter_;
  std::vector<uint8_t> frame_ = std::vector<uint8_t>(netdev::kMaxFrame);
  size_t pending_len_ = 0;  // a frame read from the tap, waiting for a receive buffer
  // Metrics (Firecracker's NetDeviceMetrics names).
  Counter rx_packets_, rx_bytes_, tx_packets_, tx_bytes_, rx_queue_events_, tx_queue_events_, rx_dropped_;
};

}  // namespace vessel::vmm::virtio
