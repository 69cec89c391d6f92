// MmioTransport: the virtio-mmio register interface (version 2, virtio 1.x
// section 4.2) in front of one VirtioDevice.
//
// vCPU threads access the registers through the MMIO bus; the device's
// worker thread processes queues. One mutex orders both, except the
// interrupt status, which is atomic so an interrupt acknowledgement never
// waits for a disk request. Queue notifications go to one eventfd per queue
// (registered with KVM_IOEVENTFD by the machine); interrupts go to
// `raise_irq` (an irqfd write). All register and queue state is in
// MmioState, so it can be saved and restored.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/unique_fd.h"
#include "vmm/devices/bus.h"
#include "vmm/virtio/device.h"

namespace vessel::vmm::virtio {

// Register offsets.
namespace mmio {
inline constexpr uint64_t kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kVendorId = 0x00c,
                          kDeviceFeatures = 0x010, kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020,
                          kDriverFeaturesSel = 0x024, kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038,
                          kQueueReady = 0x044, kQueueNotify = 0x050, kInterruptStatus = 0x060,
                          kInterruptAck = 0x064, kStatus = 0x070, kQueueDescLow = 0x080, kQueueDescHigh = 0x084,
                          kQueueDriverLow = 0x090, kQueueDriverHigh = 0x094, kQueueDeviceLow = 0x0a0,
                          kQueueDeviceHigh = 0x0a4, kConfigGeneration = 0x0fc, kConfig = 0x100;
inline constexpr uint32_t kMagicValue = 0x74726976;  // "virt"
inline constexpr uint32_t kVendor = 0x4c535356;      // "VSSL"
// Size of a device's MMIO window.
inline constexpr uint64_t kWindowSize = 0x1000;
}  // namespace mmio

// Everything a snapshot needs of the transport.
struct MmioState {
  uint32_t status = 0;
  uint32_t device_features_sel = 0;
  uint32_t driver_features_sel = 0;
  uint64_t driver_features = 0;
  uint32_t queue_sel = 0;
  uint32_t interrupt_status = 0;
  uint32_t config_generation = 0;
  std::vector<QueueState> queues;
};

class MmioTransport : public BusDevice, public DeviceHost {
 public:
  // `mem` must outlive the transport. With `notify_fds`, one eventfd per queue is created.
  MmioTransport(std::unique_ptr<VirtioDevice> device, GuestMemory& mem, bool notify_fds = false);

  VirtioDevice& device() { return *device_; }
  // Called to raise the device's interrupt (edge): an irqfd write, or a test hook.
  void set_irq(std::function<void()> raise) { raise_irq_ = std::move(raise); }
  // One eventfd per queue (empty without notify_fds): readable when the driver notified.
  const std::vector<UniqueFd>& notify_fds() const { return notify_fds_; }
  uint64_t offered_features() const;

  // BusDevice: the registers.
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Worker side: the driver notified queue `index` / a device fd is readable.
  void handle_notify(unsigned index);
  void handle_event(int fd);

  // DeviceHost.
  GuestMemory& memory() override { return mem_; }
  Queue& queue(unsigned index) override { return queues_[index]; }
  uint64_t acked_features() const override { return s_.driver_features; }
  void notify_used(unsigned index) override;
  void notify_config() override;

  // Runs `fn` on the device with the transport's lock held, so never at the
  // same time as the worker's queue processing (PATCH /drives on a running VM).
  Status update_device(const std::function<Status(VirtioDevice&)>& fn);

  MmioState save() const;
  // Restores registers and queues; an active device is re-activated.
  Status restore(const MmioState& s);
  uint32_t status() const;

 private:
  uint32_t read_reg(uint64_t offset);
  void write_reg(uint64_t offset, uint32_t v);
  void set_status(uint32_t v);
  Status activate_locked();
  void reset_locked();
  // A protocol violation: DEVICE_NEEDS_RESET plus a config interrupt.
  void fail_locked(const Error& e);
  void raise(uint32_t bits);
  bool queue_writable() const;
  Queue* selected();

  std::unique_ptr<VirtioDevice> device_;
  GuestMemory& mem_;
  std::function<void()> raise_irq_;
  std::vector<UniqueFd> notify_fds_;
  mutable std::mutex mu_;
  MmioState s_;  // s_.queues and s_.interrupt_status are not used live: see queues_ and isr_
  std::vector<Queue> queues_;
  std::atomic<uint32_t> isr_{0};
};

}  // namespace vessel::vmm::virtio
