#include "vmm/virtio/device.h"

#include <algorithm>
#include <cstring>

namespace vessel::vmm::virtio {

namespace {
template <class Fn>
size_t for_each_range(const DescriptorChain& chain, bool writable, uint64_t offset, size_t len, Fn fn) {
  size_t done = 0;
  for (const Segment& s : chain.segments) {
    if (s.writable != writable) continue;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    size_t n = std::min<uint64_t>(s.len - offset, len - done);
    fn(s.host + offset, done, n);
    done += n;
    offset = 0;
    if (done == len) break;
  }
  return done;
}
}  // namespace

size_t copy_from_chain(const DescriptorChain& chain, uint64_t offset, std::span<uint8_t> out) {
  return for_each_range(chain, false, offset, out.size(),
                        [&](const uint8_t* p, size_t at, size_t n) { std::memcpy(out.data() + at, p, n); });
}

size_t copy_to_chain(const DescriptorChain& chain, uint64_t offset, std::span<const uint8_t> in) {
  return for_each_range(chain, true, offset, in.size(),
                        [&](uint8_t* p, size_t at, size_t n) { std::memcpy(p, in.data() + at, n); });
}

}  // namespace vessel::vmm::virtio
