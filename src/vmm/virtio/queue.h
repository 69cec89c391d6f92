// Queue: the device side of a split virtqueue (virtio 1.x, 2.7).
//
// The driver owns the memory; everything read from it is hostile. Every
// descriptor address and length is checked against guest RAM, every index
// against the queue size, chains are bounded (no loops), indirect tables
// must be well formed and not nested, and the available index may not run
// ahead by more than the queue size. A malformed queue yields an Error; the
// transport then marks the device DEVICE_NEEDS_RESET. The queue never reads
// or writes outside guest RAM.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "common/error.h"
#include "vmm/kvm/memory.h"

namespace vessel::vmm::virtio {

inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;

// The layout of one descriptor in guest memory.
struct Descriptor {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Descriptor) == 16);

// The saved state of a queue: what the driver programmed and where the device is.
struct QueueState {
  uint16_t max_size = 256;
  uint16_t size = 256;
  bool ready = false;
  uint64_t desc_table = 0;
  uint64_t avail_ring = 0;
  uint64_t used_ring = 0;
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
  // The used index at the last interrupt (EVENT_IDX suppression).
  uint16_t signalled_used = 0;
  bool signalled_used_valid = false;
  // Negotiated features that change the queue's behaviour.
  bool event_idx = false;
  bool indirect = false;
};

// One buffer of a chain: guest address, length, direction and where it is in the VMM.
struct Segment {
  uint64_t addr;
  uint32_t len;
  bool writable;
  uint8_t* host;
};

// A descriptor chain popped from the available ring.
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Segment> segments;
  uint64_t readable_bytes = 0;
  uint64_t writable_bytes = 0;
};

class Queue {
 public:
  // Longest chain accepted (also bounds an indirect table).
  static constexpr uint32_t kMaxChainDescriptors = 1024;
  // Largest sum of lengths in one chain.
  static constexpr uint64_t kMaxChainBytes = 1ULL << 32;

  explicit Queue(uint16_t max_size = 256) { s_.max_size = s_.size = max_size; }

  QueueState& state() { return s_; }
  const QueueState& state() const { return s_; }

  // Checks size (power of two, <= max) and that the three rings lie in
  // aligned guest RAM; caches their host addresses. Needed before pop().
  Status activate(const GuestMemory& mem);
  bool active() const { return desc_ != nullptr; }
  // Forgets the driver's setup (device reset).
  void reset();

  // The next chain, or nullopt when the driver has made none available.
  Result<std::optional<DescriptorChain>> pop(const GuestMemory& mem);
  // Puts the last popped chain back (e.g. no room to deliver it yet).
  void undo_pop() { --s_.next_avail; }
  // Returns chain `head` with `len` bytes written to the used ring.
  Status add_used(uint16_t head, uint32_t len);
  // Whether the driver asked for an interrupt for the entries added since
  // the last one (always true without EVENT_IDX unless NO_INTERRUPT is set).
  bool needs_interrupt();
  // Before the device sleeps: tells the driver to notify at the next
  // available entry (EVENT_IDX) and returns true when more chains are already available.
  bool enable_notification();
  // Available chains not yet popped (0 when inactive).
  uint16_t pending() const;

 private:
  // Walks one descriptor table (the queue's or an indirect one) into `out`.
  Status walk(const GuestMemory& mem, const Descriptor* table, uint32_t count, uint16_t first, bool indirect_table,
              DescriptorChain& out) const;
  uint16_t avail_idx() const;

  QueueState s_;
  Descriptor* desc_ = nullptr;
  uint16_t* avail_ = nullptr;  // flags, idx, ring[size], used_event
  uint8_t* used_ = nullptr;    // flags, idx, {id, len}[size], avail_event
  const GuestMemory* mem_ = nullptr;  // set by activate(): marks the used ring dirty
};

}  // namespace vessel::vmm::virtio
