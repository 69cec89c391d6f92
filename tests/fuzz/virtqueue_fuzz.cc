// libFuzzer target: a split virtqueue whose rings, descriptors and indirect
// tables all come from the fuzzer input. The queue must never touch memory
// outside guest RAM, loop, or crash; malformed input is an Error.
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DVESSEL_FUZZ=ON && make -C build-fuzz virtqueue_fuzz
//   build-fuzz/virtqueue_fuzz -max_total_time=30
#include <cstdint>
#include <cstring>
#include <vector>

#include "vmm/kvm/memory.h"
#include "vmm/virtio/device.h"
#include "vmm/virtio/queue.h"

using namespace vessel::vmm;
using namespace vessel::vmm::virtio;

namespace {
constexpr uint64_t kRam = 64 * 1024;  // guest RAM: the input is copied here
GuestMemory& memory() {
  static GuestMemory mem = std::move(GuestMemory::create(kRam, 3ULL << 30, 4ULL << 30).value());
  return mem;
}
uint64_t take(const uint8_t*& p, size_t& n, size_t bytes) {
  uint64_t v = 0;
  size_t k = bytes < n ? bytes : n;
  std::memcpy(&v, p, k);
  p += k;
  n -= k;
  return v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GuestMemory& mem = memory();
  const uint8_t* p = data;
  size_t n = size;
  // Header: queue setup chosen by the input (mostly in range, sometimes not).
  uint8_t flags = static_cast<uint8_t>(take(p, n, 1));
  Queue q(256);
  QueueState& s = q.state();
  s.size = static_cast<uint16_t>(1u << (take(p, n, 1) % 10));  // 1..512 (512 is over max)
  s.desc_table = take(p, n, 2) * 16 % (kRam + 0x1000);
  s.avail_ring = take(p, n, 2) * 2 % (kRam + 0x1000);
  s.used_ring = take(p, n, 2) * 4 % (kRam + 0x1000);
  s.next_avail = static_cast<uint16_t>(take(p, n, 2));
  s.next_used = static_cast<uint16_t>(take(p, n, 2));
  s.event_idx = flags & 1;
  s.indirect = flags & 2;
  if (flags & 4) s.desc_table = take(p, n, 8);  // wild addresses
  // The rest of the input is guest RAM.
  (void)mem.fill(0, 0, kRam);
  (void)mem.write(0, std::span<const uint8_t>(p, n < kRam ? n : kRam));
  if (!q.activate(mem).ok()) return 0;
  std::vector<uint8_t> buf(4096);
  for (int i = 0; i < 512; ++i) {
    auto r = q.pop(mem);
    if (!r.ok() || !r->has_value()) break;
    const DescriptorChain& c = **r;
    copy_from_chain(c, 0, buf);
    copy_to_chain(c, c.writable_bytes > 16 ? c.writable_bytes - 16 : 0, buf);
    if (!q.add_used(c.head, static_cast<uint32_t>(c.writable_bytes)).ok()) break;
    if (q.needs_interrupt() && (flags & 8)) (void)q.enable_notification();
  }
  (void)q.enable_notification();
  return 0;
}
