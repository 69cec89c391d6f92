#include "vmm/virtio/rng/rng.h"

#include <sys/random.h>

#include <algorithm>
#include <cstring>

#include "vmm/virtio/virtio.h"

namespace vessel::vmm::virtio {

uint32_t RngDevice::device_type() const { return kTypeRng; }

void RngDevice::read_config(uint64_t, std::span<uint8_t> data) const { std::memset(data.data(), 0, data.size()); }

void RngDevice::report_metrics(const MetricFn& put) const {
  put("entropy_event_count", entropy_event_count_.get());
  put("entropy_bytes", entropy_bytes_.get());
  put("host_rng_fails", host_rng_fails_.get());
}

Status RngDevice::process_queue(DeviceHost& host, unsigned index) {
  Queue& q = host.queue(index);
  entropy_event_count_.add();
  bool used = false;
  do {
    while (auto chain = TRY(q.pop(host.memory()))) {
      uint32_t total = 0;
      for (const Segment& s : chain->segments) {
        if (!s.writable) continue;
        uint32_t want = std::min<uint32_t>(s.len, kMaxRequest - total);
        uint32_t got = 0;
        while (got < want) {
          ssize_t n = ::getrandom(s.host + got, want - got, 0);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            host_rng_fails_.add();
            break;
          }
          got += static_cast<uint32_t>(n);
        }
        total += got;
        if (got < want || total == kMaxRequest) break;
      }
      entropy_bytes_.add(total);
      TRY(q.add_used(chain->head, total));
      used = true;
    }
  } while (q.enable_notification());
  if (used) host.notify_used(index);
  return ok();
}

}  // namespace vessel::vmm::virtio
