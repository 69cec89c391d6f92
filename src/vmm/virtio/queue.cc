#include "vmm/virtio/queue.h"

#include <cstring>

#include "common/strings.h"
#include "vmm/hex.h"

namespace vessel::vmm::virtio {

namespace {
constexpr uint16_t kAvailFNoInterrupt = 1;

uint16_t load16(const void* p) { return __atomic_load_n(static_cast<const uint16_t*>(p), __ATOMIC_ACQUIRE); }
void store16(void* p, uint16_t v) { __atomic_store_n(static_cast<uint16_t*>(p), v, __ATOMIC_RELEASE); }

// vring_need_event() of the spec: did new_idx pass event_idx since old_idx?
bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}
}  // namespace

Status Queue::activate(const GuestMemory& mem) {
  const uint16_t n = s_.size;
  if (n == 0 || n > s_.max_size || (n & (n - 1)) != 0)
    return Error::invalid(cat("queue size ", n, " is not a power of two up to ", s_.max_size));
  if (s_.desc_table % 16 || s_.avail_ring % 2 || s_.used_ring % 4) return Error::invalid("misaligned queue rings");
  uint8_t* d = mem.host_ptr(s_.desc_table, uint64_t{16} * n);
  uint8_t* a = mem.host_ptr(s_.avail_ring, 6 + uint64_t{2} * n);
  uint8_t* u = mem.host_ptr(s_.used_ring, 6 + uint64_t{8} * n);
  if (!d || !a || !u)
    return Error::invalid(cat("queue rings (", hex(s_.desc_table), ", ", hex(s_.avail_ring), ", ", hex(s_.used_ring),
                              ") are not in guest RAM"));
  desc_ = reinterpret_cast<Descriptor*>(d);
  avail_ = reinterpret_cast<uint16_t*>(a);
  used_ = u;
  mem_ = &mem;
  return ok();
}

void Queue::reset() {
  uint16_t max = s_.max_size;
  s_ = QueueState{};
  s_.max_size = s_.size = max;
  desc_ = nullptr;
  avail_ = nullptr;
  used_ = nullptr;
  mem_ = nullptr;
}

uint16_t Queue::avail_idx() const { return load16(&avail_[1]); }

uint16_t Queue::pending() const { return active() ? static_cast<uint16_t>(avail_idx() - s_.next_avail) : 0; }

Status Queue::walk(const GuestMemory& mem, const Descriptor* table, uint32_t count, uint16_t first,
                   bool indirect_table, DescriptorChain& out) const {
  uint32_t index = first;
  for (uint32_t walked = 0;; ++walked) {
    if (index >= count) return Error::invalid(cat("descriptor index ", index, " out of range (", count, ")"));
    if (walked >= count || out.segments.size() >= kMaxChainDescriptors)
      return Error::invalid("descriptor chain loops or is too long");
    Descriptor d;
    std::memcpy(&d, &table[index], sizeof d);
    if (d.flags & kDescFIndirect) {
      if (indirect_table) return Error::invalid("indirect descriptor inside an indirect table");
      if (!s_.indirect) return Error::invalid("indirect descriptor without VIRTIO_F_INDIRECT_DESC");
      if (d.flags & kDescFNext) return Error::invalid("indirect descriptor with NEXT set");
      if (d.len == 0 || d.len % sizeof(Descriptor) != 0 || d.len / sizeof(Descriptor) > kMaxChainDescriptors)
        return Error::invalid(cat("bad indirect table length ", d.len));
      if (d.addr % alignof(Descriptor) != 0) return Error::invalid("misaligned indirect table");
      const uint8_t* t = mem.host_ptr(d.addr, d.len);
      if (!t) return Error::invalid(cat("indirect table ", hex(d.addr), "+", d.len, " is not in guest RAM"));
      return walk(mem, reinterpret_cast<const Descriptor*>(t), d.len / sizeof(Descriptor), 0, true, out);
    }
    bool writable = d.flags & kDescFWrite;
    if (!writable && out.writable_bytes > 0) return Error::invalid("readable descriptor after a writable one");
    uint8_t* host = mem.host_ptr(d.addr, d.len);
    if (!host) return Error::invalid(cat("descriptor buffer ", hex(d.addr), "+", d.len, " is not in guest RAM"));
    (writable ? out.writable_bytes : out.readable_bytes) += d.len;
    if (out.readable_bytes + out.writable_bytes > kMaxChainBytes) return Error::invalid("descriptor chain too large");
    out.segments.push_back({d.addr, d.len, writable, host});
    if (writable) mem.mark_dirty(d.addr, d.len);  // the device may write it: diff snapshots must include it
    if (!(d.flags & kDescFNext)) return ok();
    index = d.next;
  }
}

Result<std::optional<DescriptorChain>> Queue::pop(const GuestMemory& mem) {
  if (!active()) return Error::invalid("queue is not ready");
  const uint16_t avail = avail_idx();
  const uint16_t ahead = static_cast<uint16_t>(avail - s_.next_avail);
  if (ahead > s_.size) return Error::invalid(cat("available index jumped by ", ahead, " (queue size ", s_.size, ")"));
  if (ahead == 0) return std::optional<DescriptorChain>{};
  // The acquire load of idx orders the ring read after it.
  uint16_t head = load16(&avail_[2 + s_.next_avail % s_.size]);
  DescriptorChain chain;
  chain.head = head;
  TRYC(walk(mem, desc_, s_.size, head, false, chain), cat("chain at descriptor ", head));
  ++s_.next_avail;
  return std::optional<DescriptorChain>(std::move(chain));
}

Status Queue::add_used(uint16_t head, uint32_t len) {
  if (!active()) return Error::invalid("queue is not ready");
  if (head >= s_.size) return Error::invalid(cat("used id ", head, " out of range"));
  uint8_t* elem = used_ + 4 + 8 * (s_.next_used % s_.size);
  uint32_t id = head;
  std::memcpy(elem, &id, 4);
  std::memcpy(elem + 4, &len, 4);
  ++s_.next_used;
  store16(used_ + 2, s_.next_used);  // release: the element is visible before the index
  mem_->mark_dirty(s_.used_ring, 6 + uint64_t{8} * s_.size);
  return ok();
}

bool Queue::needs_interrupt() {
  if (!active()) return false;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // used idx store before the used_event / flags load
  uint16_t new_idx = s_.next_used;
  if (!s_.event_idx) return !(load16(&avail_[0]) & kAvailFNoInterrupt);
  uint16_t old_idx = s_.signalled_used;
  bool valid = s_.signalled_used_valid;
  s_.signalled_used = new_idx;
  s_.signalled_used_valid = true;
  if (!valid) return true;
  uint16_t used_event = load16(&avail_[2 + s_.size]);
  return need_event(used_event, new_idx, old_idx);
}

bool Queue::enable_notification() {
  if (!active()) return false;
  if (s_.event_idx) {
    store16(used_ + 4 + 8 * s_.size, s_.next_avail);
    mem_->mark_dirty(s_.used_ring, 6 + uint64_t{8} * s_.size);
  }
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // avail_event store before re-reading avail idx
  return avail_idx() != s_.next_avail;
}

}  // namespace vessel::vmm::virtio
