// VirtioDevice: what a virtio device model (block, net, rng) implements, and
// DeviceHost: what the transport gives it (guest memory, its queues, the
// interrupt). Devices know nothing of MMIO or KVM, so they are unit-tested
// against a plain GuestMemory.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "common/error.h"
#include "vmm/counter.h"
#include "vmm/kvm/memory.h"
#include "vmm/virtio/queue.h"

namespace vessel::vmm::virtio {

// The transport, as a device sees it.
class DeviceHost {
 public:
  virtual ~DeviceHost() = default;
  virtual GuestMemory& memory() = 0;
  virtual Queue& queue(unsigned index) = 0;
  // Features the driver accepted.
  virtual uint64_t acked_features() const = 0;
  // Raises a used-buffer interrupt for queue `index` if the driver wants one.
  virtual void notify_used(unsigned index) = 0;
  // The device changed its configuration space: bumps the configuration
  // generation and raises a configuration-change interrupt. Must not be
  // called from process_queue()/process_event() (the transport's lock is held there).
  virtual void notify_config() {}
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_type() const = 0;
  // Device-specific feature bits; the transport adds VERSION_1, EVENT_IDX and INDIRECT_DESC.
  virtual uint64_t device_features() const = 0;
  // Maximum size of each queue; its length is the number of queues.
  virtual std::vector<uint16_t> queue_max_sizes() const = 0;

  // Device configuration space, byte-addressed; out-of-range bytes read as 0.
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) const = 0;
  virtual void write_config(uint64_t offset, std::span<const uint8_t> data) {}

  // The driver set DRIVER_OK with `features` accepted (queues are active).
  virtual Status activate(DeviceHost& host) { return ok(); }
  // The driver notified queue `index`. An Error means the driver broke the
  // protocol (malformed chain): the transport sets DEVICE_NEEDS_RESET.
  virtual Status process_queue(DeviceHost& host, unsigned index) = 0;
  // Extra fds the device wants watched (a tap, a rate limiter timer); readable -> process_event().
  virtual std::vector<int> event_fds() const { return {}; }
  virtual Status process_event(DeviceHost& host, int fd) { return ok(); }
  // The driver reset the device.
  virtual void reset() {}

  // Reports the device's counters, under Firecracker's metric names where it
  // has one (block: read_count, read_bytes, ...; net: rx_packets_count, ...),
  // to `put`. Called from the VMM's thread while the worker runs.
  using MetricFn = std::function<void(const char* name, uint64_t value)>;
  virtual void report_metrics(const MetricFn& put) const {}
};

// Copies between a chain's segments and plain buffers. `offset` counts bytes
// across the segments of one direction (readable or writable); each returns
// the number of bytes copied.
size_t copy_from_chain(const DescriptorChain& chain, uint64_t offset, std::span<uint8_t> out);
size_t copy_to_chain(const DescriptorChain& chain, uint64_t offset, std::span<const uint8_t> in);

}  // namespace vessel::vmm::virtio
