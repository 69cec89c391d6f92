// libFuzzer target: a hostile guest driving virtio-vsock through the
// virtio-mmio registers: packets with any CIDs, ports, ops, lengths and
// credit on the transmit queue, receive buffers of any shape, plus host
// events. A host listener on port 1024 accepts guest connections, so the
// connection paths run too. Nothing may crash, hang or leak fds.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "vmm/kvm/memory.h"
#include "vmm/virtio/mmio.h"
#include "vmm/virtio/vsock/vsock.h"

using namespace vessel;
using namespace vessel::vmm;
using namespace vessel::vmm::virtio;

namespace {
constexpr uint64_t kRam = 256 * 1024;

GuestMemory& memory() {
  static GuestMemory mem = std::move(GuestMemory::create(kRam, 3ULL << 30, 4ULL << 30).value());
  return mem;
}

const std::string& socket_path() {
  static std::string p = "/tmp/vessel-vsock-fuzz-" + std::to_string(::getpid());
  return p;
}

// A listener for guest connections to host port 1024 (accepted and kept open by the kernel's backlog).
int listener() {
  static int fd = [] {
    std::string p = socket_path() + "_1024";
    ::unlink(p.c_str());
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, p.c_str(), sizeof a.sun_path - 1);
    if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(s, 4096) < 0) abort();
    return s;
  }();
  return fd;
}

size_t open_fds() {
  size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (d && ::readdir(d)) ++n;
  if (d) ::closedir(d);
  return n;
}

void drain_listener() {
  for (;;) {
    int c = ::accept4(listener(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    ::close(c);
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GuestMemory& mem = memory();
  (void)listener();
  ::fcntl(listener(), F_SETFL, O_NONBLOCK);
  drain_listener();
  size_t fds_before = open_fds();
  (void)mem.fill(0, 0, kRam);
  if (size < 1) return 0;
  {
    auto dev = VsockDevice::create({3, socket_path()});
    if (!dev) abort();
    VsockDevice* vs = dev->get();
    MmioTransport t(std::move(dev).value(), mem);
    t.set_irq([] {});
    auto wr = [&](uint64_t off, uint32_t v) {
      t.write(off, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
    };
    if (data[0] & 1) {
      wr(mmio::kStatus, 1);
      wr(mmio::kStatus, 3);
      wr(mmio::kDriverFeaturesSel, 1);
      wr(mmio::kDriverFeatures, 1);  // VERSION_1
      wr(mmio::kStatus, 0xb);
      for (uint32_t q = 0; q < 3; ++q) {
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
      uint8_t op = data[i++] % 5;
      switch (op) {
        case 0: {
          uint64_t off = take(2) & 0x1ff;
          wr(off, static_cast<uint32_t>(take(4)));
          break;
        }
        case 1: {  // guest writes RAM
          uint64_t at = take(3) % kRam;
          size_t n = take(1);
          n = std::min<size_t>({n, size - i, kRam - at});
          (void)mem.write(at, std::span<const uint8_t>(data + i, n));
          i += n;
          break;
        }
        case 2: t.handle_notify(static_cast<unsigned>(take(1) % 3)); break;
        case 3: t.handle_event(vs->event_fds()[0]); break;
        case 4: {  // restore + transport reset
          MmioState s = t.save();
          (void)vs->restore(vs->save());
          (void)t.restore(s);
          break;
        }
      }
    }
  }
  drain_listener();
  if (open_fds() != fds_before) abort();  // every connection's socket was closed with the device
  return 0;
}
