// BlockDevice: virtio-blk (virtio 1.x, 5.2) over a DiskImage. One request
// queue; read, write, flush, discard, write-zeroes and get-id; an optional
// read-only mode (VIRTIO_BLK_F_RO) and rate limit. Requests are served
// synchronously on the device's worker thread.
#pragma once

#include <memory>
#include <string>

#include "vmm/disk/disk.h"
#include "vmm/virtio/device.h"
#include "vmm/virtio/rate_limiter.h"

namespace vessel::vmm::virtio {

namespace blk {
inline constexpr unsigned kFSegMax = 2, kFRo = 5, kFBlkSize = 6, kFFlush = 9, kFDiscard = 13, kFWriteZeroes = 14;
inline constexpr uint32_t kTIn = 0, kTOut = 1, kTFlush = 4, kTGetId = 8, kTDiscard = 11, kTWriteZeroes = 13;
inline constexpr uint8_t kSOk = 0, kSIoErr = 1, kSUnsupp = 2;
inline constexpr uint64_t kSectorSize = 512;
inline constexpr size_t kIdBytes = 20;
inline constexpr uint16_t kQueueSize = 256;
inline constexpr uint32_t kSegMax = 128;
// Largest discard / write-zeroes request, in sectors.
inline constexpr uint32_t kMaxDiscardSectors = 1u << 22;
}  // namespace blk

struct BlockOptions {
  bool readonly = false;
  std::string serial;  // at most 20 bytes reach the guest
  uint64_t bandwidth = 0;  // bytes/s, 0 = unlimited
  uint64_t iops = 0;
};

class BlockDevice : public VirtioDevice {
 public:
  static Result<std::unique_ptr<BlockDevice>> create(std::unique_ptr<disk::DiskImage> disk, BlockOptions opts);

  uint32_t device_type() const override;
  uint64_t device_features() const override;
  std::vector<uint16_t> queue_max_sizes() const override { return {blk::kQueueSize}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) const override;
  Status process_queue(DeviceHost& host, unsigned index) override;
  std::vector<int> event_fds() const override;
  Status process_event(DeviceHost& host, int fd) override;
  void report_metrics(const MetricFn& put) const override;

  // Serves one request; returns the number of bytes written to the chain
  // (data + status), or an Error when the chain cannot even carry a status.
  Result<uint32_t> handle_request(const DescriptorChain& chain);
  uint64_t capacity_sectors() const { return disk_->size() / blk::kSectorSize; }
  // Makes every completed write durable (before a snapshot).
  Status flush() { return disk_->flush(); }

  // PATCH /drives on a running VM (call with the transport's lock held:
  // MmioTransport::update_device): a new backing image, whose size becomes
  // the capacity (the caller then raises a configuration change), and new
  // rate limits.
  // Refused while a migration copies the image (set_write_log).
  Status replace_disk(std::unique_ptr<disk::DiskImage> disk);
  // A migration that copies the image file (`--copy-disks`) gets its changes
  // marked in `log` (nullptr: no more). Call with the transport's lock held.
  void set_write_log(std::shared_ptr<disk::FileWriteLog> log) {
    copying_ = log != nullptr;
    disk_->set_write_log(std::move(log));
  }
  void set_rate_limits(uint64_t bytes_per_sec, uint64_t ops_per_sec);
  bool read_only() const { return opts_.readonly; }

 private:
  BlockDevice(std::unique_ptr<disk::DiskImage> disk, BlockOptions opts)
      : disk_(std::move(disk)), opts_(std::move(opts)), limiter_(opts_.bandwidth, opts_.iops) {}
  uint8_t serve(uint32_t type, uint64_t sector, const DescriptorChain& chain, uint64_t data_len, uint32_t& written);

  std::unique_ptr<disk::DiskImage> disk_;
  BlockOptions opts_;
  RateLimiter limiter_;
  bool copying_ = false;  // a migration copies the image
  // Metrics (Firecracker's BlockDeviceMetrics names).
  Counter read_count_, read_bytes_, write_count_, write_bytes_, flush_count_, queue_event_count_,
      invalid_reqs_count_, update_count_;
};

}  // namespace vessel::vmm::virtio
