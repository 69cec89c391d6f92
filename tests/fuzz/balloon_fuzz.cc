// libFuzzer target: a hostile guest driving virtio-balloon through the
// virtio-mmio registers: PFN lists on the inflate/deflate queues (out of
// range, duplicated, huge), statistics buffers, free page reports over any
// range, plus host-side target changes and statistics polls. Nothing may
// crash or hang (ASan checks the VMM's own memory); a canary mapping of the
// VMM, which a stray discard would zero, must keep its contents.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "vmm/kvm/memory.h"
#include "vmm/virtio/balloon/balloon.h"
#include "vmm/virtio/mmio.h"

using namespace vessel;
using namespace vessel::vmm;
using namespace vessel::vmm::virtio;

namespace {
constexpr uint64_t kRam = 256 * 1024;
constexpr size_t kCanary = 64 * 1024;

GuestMemory& memory() {
  static GuestMemory mem = std::move(GuestMemory::create(kRam, 3ULL << 30, 4ULL << 30).value());
  return mem;
}

uint8_t* canary() {
  static uint8_t* c = [] {
    void* p = ::mmap(nullptr, kCanary, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    std::memset(p, 0x5a, kCanary);
    return static_cast<uint8_t*>(p);
  }();
  return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GuestMemory& mem = memory();
  uint8_t* guard = canary();
  (void)mem.fill(0, 0, kRam);
  if (size < 1) return 0;
  BalloonOptions o;
  o.free_page_reporting = data[0] & 1;
  o.deflate_on_oom = data[0] & 4;
  auto dev = BalloonDevice::create(o);
  if (!dev) abort();
  BalloonDevice* balloon = dev->get();
  MmioTransport t(std::move(dev).value(), mem);
  t.set_irq([] {});
  auto wr = [&](uint64_t off, uint32_t v) {
    t.write(off, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  };
  if (data[0] & 2) {
    // A driver that got the handshake right: every offered feature, each queue of 16 at its own addresses.
    wr(mmio::kStatus, 1);
    wr(mmio::kStatus, 3);
    for (uint32_t sel = 0; sel < 2; ++sel) {
      wr(mmio::kDeviceFeaturesSel, sel);
      uint32_t f = 0;
      t.read(mmio::kDeviceFeatures, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&f), 4));
      wr(mmio::kDriverFeaturesSel, sel);
      wr(mmio::kDriverFeatures, f);
    }
    wr(mmio::kStatus, 0xb);
    for (uint32_t q = 0; q < 4; ++q) {
      wr(mmio::kQueueSel, q);
      wr(mmio::kQueueNum, 16);
      wr(mmio::kQueueDescLow, 0x1000 + q * 0x1000);
      wr(mmio::kQueueDriverLow, 0x5000 + q * 0x1000);
      wr(mmio::kQueueDeviceLow, 0x9000 + q * 0x1000);
      wr(mmio::kQueueReady, 1);
    }
    wr(mmio::kStatus, 0xf);
  }
  size_t i = 1;
  auto take = [&](size_t n) {
    uint64_t v = 0;
    size_t k = i + n <= size ? n : size - i;
    std::memcpy(&v, data + i, k);
    i += k;
    return v;
  };
  while (i < size) {
    uint8_t op = data[i++] % 7;
    switch (op) {
      case 0: {  // register write
        uint64_t off = take(2) & 0x1ff;
        wr(off, static_cast<uint32_t>(take(4)));
        break;
      }
      case 1: {  // register read, any width
        uint64_t off = take(2) & 0x1ff;
        uint8_t buf[8];
        t.read(off, std::span<uint8_t>(buf, 1 + take(1) % 8));
        break;
      }
      case 2: {  // guest writes RAM
        uint64_t at = take(3) % kRam;
        size_t n = take(1);
        n = std::min<size_t>({n, size - i, kRam - at});
        (void)mem.write(at, std::span<const uint8_t>(data + i, n));
        i += n;
        break;
      }
      case 3: t.handle_notify(static_cast<unsigned>(take(1) % 5)); break;
      case 4: balloon->set_target_pages(static_cast<uint32_t>(take(4))); break;
      case 5: t.handle_event(balloon->event_fds()[0]); break;
      case 6: {  // save + restore
        MmioState s = t.save();
        (void)balloon->restore(balloon->save());
        (void)t.restore(s);
        break;
      }
    }
  }
  for (size_t k = 0; k < kCanary; ++k)
    if (guard[k] != 0x5a) abort();
  return 0;
}
