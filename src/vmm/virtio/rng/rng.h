// RngDevice: virtio-rng (virtio 1.x, 5.4). Fills each writable buffer with
// bytes from the host's getrandom().
#pragma once

#include "vmm/virtio/device.h"

namespace vessel::vmm::virtio {

class RngDevice : public VirtioDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Largest request served at once (a guest asking more gets a short buffer).
  static constexpr uint32_t kMaxRequest = 64 * 1024;

  uint32_t device_type() const override;
  uint64_t device_features() const override { return 0; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  Status process_queue(DeviceHost& host, unsigned index) override;
  void report_metrics(const MetricFn& put) const override;

 private:
  // Metrics (Firecracker's EntropyDeviceMetrics names).
  Counter entropy_event_count_, entropy_bytes_, host_rng_fails_;
};

}  // namespace vessel::vmm::virtio
