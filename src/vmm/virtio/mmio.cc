#include "vmm/virtio/mmio.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {

MmioTransport::MmioTransport(std::unique_ptr<VirtioDevice> device, GuestMemory& mem, bool notify_fds)
    : device_(std::move(device)), mem_(mem) {
  for (uint16_t max : device_->queue_max_sizes()) {
    queues_.emplace_back(max);
    if (notify_fds) notify_fds_.emplace_back(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }
}

uint64_t MmioTransport::offered_features() const {
  return device_->device_features() | bit(kFVersion1) | bit(kFEventIdx) | bit(kFIndirectDesc);
}

uint32_t MmioTransport::status() const {
  std::lock_guard lock(mu_);
  return s_.status;
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  if (offset >= mmio::kConfig) {
    std::lock_guard lock(mu_);
    device_->read_config(offset - mmio::kConfig, data);
    return;
  }
  uint32_t v = 0;
  if (data.size() == 4 && offset % 4 == 0) {
    if (offset == mmio::kInterruptStatus) {
      v = isr_.load();
    } else {
      std::lock_guard lock(mu_);
      v = read_reg(offset);
    }
  }
  // Registers are 32-bit; other widths read as 0.
  std::memcpy(data.data(), &v, std::min<size_t>(data.size(), 4));
  if (data.size() > 4) std::memset(data.data() + 4, 0, data.size() - 4);
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset >= mmio::kConfig) {
    std::lock_guard lock(mu_);
    device_->write_config(offset - mmio::kConfig, data);
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) return;
  uint32_t v;
  std::memcpy(&v, data.data(), 4);
  if (offset == mmio::kInterruptAck) {
    isr_.fetch_and(~v);
    return;
  }
  if (offset == mmio::kQueueNotify) {
    // Normally caught by the ioeventfd; without one, signal or process here.
    if (v < notify_fds_.size()) {
      uint64_t one = 1;
      (void)!::write(notify_fds_[v].get(), &one, sizeof one);
    } else if (v < queues_.size()) {
      handle_notify(v);
    }
    return;
  }
  std::lock_guard lock(mu_);
  write_reg(offset, v);
}

Queue* MmioTransport::selected() { return s_.queue_sel < queues_.size() ? &queues_[s_.queue_sel] : nullptr; }

uint32_t MmioTransport::read_reg(uint64_t offset) {
  Queue* q = selected();
  switch (offset) {
    case mmio::kMagic: return mmio::kMagicValue;
    case mmio::kVersion: return 2;
    case mmio::kDeviceId: return device_->device_type();
    case mmio::kVendorId: return mmio::kVendor;
    case mmio::kDeviceFeatures:
      return s_.device_features_sel > 1 ? 0 : static_cast<uint32_t>(offered_features() >> (32 * s_.device_features_sel));
    case mmio::kQueueNumMax: return q ? q->state().max_size : 0;
    case mmio::kQueueReady: return q ? q->state().ready : 0;
    case mmio::kStatus: return s_.status;
    case mmio::kConfigGeneration: return s_.config_generation;
    default: return 0;
  }
}

bool MmioTransport::queue_writable() const {
  return (s_.status & kStatusFeaturesOk) && !(s_.status & (kStatusDriverOk | kStatusFailed | kStatusNeedsReset));
}

void MmioTransport::write_reg(uint64_t offset, uint32_t v) {
  auto set_low = [](uint64_t& a, uint32_t v) { a = (a & ~0xffffffffULL) | v; };
  auto set_high = [](uint64_t& a, uint32_t v) { a = (a & 0xffffffffULL) | (uint64_t{v} << 32); };
  Queue* q = selected();
  QueueState* qs = q ? &q->state() : nullptr;
  bool qw = qs && queue_writable() && !qs->ready;
  switch (offset) {
    case mmio::kDeviceFeaturesSel: s_.device_features_sel = v; break;
    case mmio::kDriverFeaturesSel: s_.driver_features_sel = v; break;
    case mmio::kDriverFeatures:
      // Only while negotiating (DRIVER set, FEATURES_OK not yet).
      if ((s_.status & kStatusDriver) && !(s_.status & kStatusFeaturesOk) && s_.driver_features_sel <= 1) {
        if (s_.driver_features_sel == 0) set_low(s_.driver_features, v);
        else set_high(s_.driver_features, v);
      }
      break;
    case mmio::kQueueSel: s_.queue_sel = v; break;
    case mmio::kQueueNum: if (qw) qs->size = static_cast<uint16_t>(v > 0xffff ? 0 : v); break;
    case mmio::kQueueReady:
      if (qs && queue_writable()) {
        if (v == 1) qs->ready = true;
        else if (v == 0) qs->ready = false;
      }
      break;
    case mmio::kQueueDescLow: if (qw) set_low(qs->desc_table, v); break;
    case mmio::kQueueDescHigh: if (qw) set_high(qs->desc_table, v); break;
    case mmio::kQueueDriverLow: if (qw) set_low(qs->avail_ring, v); break;
    case mmio::kQueueDriverHigh: if (qw) set_high(qs->avail_ring, v); break;
    case mmio::kQueueDeviceLow: if (qw) set_low(qs->used_ring, v); break;
    case mmio::kQueueDeviceHigh: if (qw) set_high(qs->used_ring, v); break;
    case mmio::kStatus: set_status(v); break;
    default: break;  // read-only or unknown: ignored
  }
}

void MmioTransport::set_status(uint32_t v) {
  if (v == 0) {
    reset_locked();
    return;
  }
  const uint32_t old = s_.status;
  if ((v & old) != old) return;  // the driver may only add bits (or write 0)
  uint32_t added = v & ~old;
  if (added & kStatusNeedsReset) return;  // only the device sets DEVICE_NEEDS_RESET
  if (added & kStatusFailed) {
    s_.status |= kStatusFailed;
    return;
  }
  // Each step needs the previous one.
  if ((added & kStatusDriver) && !(v & kStatusAcknowledge)) return;
  if (added & kStatusFeaturesOk) {
    if (!(v & kStatusDriver)) return;
    uint64_t f = s_.driver_features;
    // Features must be a subset of the offer and include VERSION_1 (no legacy interface).
    if ((f & ~offered_features()) || !(f & bit(kFVersion1))) {
      v &= ~kStatusFeaturesOk;  // the driver reads FEATURES_OK back and gives up
    }
  }
  if (added & kStatusDriverOk) {
    if (!(v & kStatusFeaturesOk)) return;
    s_.status = v;
    if (auto st = activate_locked(); !st) fail_locked(st.error());
    return;
  }
  s_.status = v;
}

Status MmioTransport::activate_locked() {
  bool event_idx = s_.driver_features & bit(kFEventIdx);
  bool indirect = s_.driver_features & bit(kFIndirectDesc);
  for (size_t i = 0; i < queues_.size(); ++i) {
    QueueState& qs = queues_[i].state();
    qs.event_idx = event_idx;
    qs.indirect = indirect;
    if (qs.ready) TRYC(queues_[i].activate(mem_), cat("queue ", i));
  }
  TRYC(device_->activate(*this), "activate the device");
  // Buffers made available before DRIVER_OK: their notification was dropped
  // (handle_notify), so take them now. Linux's virtio_balloon primes its
  // statistics queue during probe, before DRIVER_OK; without this the
  // device never sees a statistics buffer.
  for (size_t i = 0; i < queues_.size(); ++i)
    if (queues_[i].active()) TRYC(device_->process_queue(*this, static_cast<unsigned>(i)), cat("queue ", i));
  return ok();
}

void MmioTransport::reset_locked() {
  device_->reset();
  for (auto& q : queues_) q.reset();
  uint32_t gen = s_.config_generation;
  s_ = MmioState{};
  s_.config_generation = gen;
  isr_.store(0);
}

void MmioTransport::fail_locked(const Error& e) {
  log::warn("virtio", cat("device type ", device_->device_type(), ": ", e.message(), "; device needs reset"));
  s_.status |= kStatusNeedsReset;
  raise(kInterruptConfigChange);
}

void MmioTransport::raise(uint32_t bits) {
  isr_.fetch_or(bits);
  if (raise_irq_) raise_irq_();
}

void MmioTransport::notify_used(unsigned index) {
  if (index < queues_.size() && queues_[index].needs_interrupt()) raise(kInterruptUsedBuffer);
}

void MmioTransport::notify_config() {
  std::lock_guard lock(mu_);
  ++s_.config_generation;
  if (s_.status & kStatusDriverOk) raise(kInterruptConfigChange);
}

void MmioTransport::handle_notify(unsigned index) {
  std::lock_guard lock(mu_);
  if (index >= queues_.size() || !(s_.status & kStatusDriverOk) || (s_.status & kStatusNeedsReset)) return;
  if (!queues_[index].active()) return;
  if (auto st = device_->process_queue(*this, index); !st) fail_locked(st.error());
}

void MmioTransport::handle_event(int fd) {
  std::lock_guard lock(mu_);
  if (!(s_.status & kStatusDriverOk) || (s_.status & kStatusNeedsReset)) return;
  if (auto st = device_->process_event(*this, fd); !st) fail_locked(st.error());
}

Status MmioTransport::update_device(const std::function<Status(VirtioDevice&)>& fn) {
  std::lock_guard lock(mu_);
  return fn(*device_);
}

MmioState MmioTransport::save() const {
  std::lock_guard lock(mu_);
  MmioState s = s_;
  s.interrupt_status = isr_.load();
  s.queues.clear();
  for (const auto& q : queues_) s.queues.push_back(q.state());
  return s;
}

Status MmioTransport::restore(const MmioState& s) {
  std::lock_guard lock(mu_);
  if (s.queues.size() != queues_.size())
    return Error::invalid(cat("saved state has ", s.queues.size(), " queues, the device ", queues_.size()));
  for (size_t i = 0; i < queues_.size(); ++i) {
    if (s.queues[i].max_size != queues_[i].state().max_size) return Error::invalid(cat("queue ", i, ": max size differs"));
  }
  for (auto& q : queues_) q.reset();
  s_ = s;
  s_.queues.clear();
  isr_.store(s.interrupt_status);
  for (size_t i = 0; i < queues_.size(); ++i) queues_[i].state() = s.queues[i];
  if ((s_.status & kStatusDriverOk) && !(s_.status & kStatusNeedsReset)) {
    for (size_t i = 0; i < queues_.size(); ++i)
      if (queues_[i].state().ready) TRYC(queues_[i].activate(mem_), cat("restore queue ", i));
    TRYC(device_->activate(*this), "restore the device");
  }
  return ok();
}

}  // namespace vessel::vmm::virtio
