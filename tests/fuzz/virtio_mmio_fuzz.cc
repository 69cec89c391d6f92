// libFuzzer target: a guest driving a virtio-blk device through the
// virtio-mmio registers. The input is a program of register writes, reads,
// guest RAM pokes and notifications; the device serves requests against an
// in-memory raw disk. Nothing may crash, hang or touch memory outside guest RAM.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "vmm/disk/raw.h"
#include "vmm/kvm/memory.h"
#include "vmm/virtio/block/block.h"
#include "vmm/virtio/mmio.h"

using namespace vessel;
using namespace vessel::vmm;
using namespace vessel::vmm::virtio;

namespace {
constexpr uint64_t kRam = 64 * 1024;
constexpr uint64_t kDisk = 64 * 1024;

GuestMemory& memory() {
  static GuestMemory mem = std::move(GuestMemory::create(kRam, 3ULL << 30, 4ULL << 30).value());
  return mem;
}

std::unique_ptr<BlockDevice> make_block(bool readonly) {
  int fd = ::memfd_create("fuzz-disk", MFD_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, kDisk) < 0) abort();
  auto disk = std::make_unique<disk::RawDisk>(UniqueFd(fd), kDisk, readonly);
  BlockOptions o;
  o.readonly = readonly;
  o.serial = "fuzz";
  return std::move(BlockDevice::create(std::move(disk), o).value());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  GuestMemory& mem = memory();
  (void)mem.fill(0, 0, kRam);
  if (size < 1) return 0;
  MmioTransport t(make_block(data[0] & 1), mem);
  int irqs = 0;
  t.set_irq([&] { ++irqs; });
  auto wr = [&](uint64_t off, uint32_t v) {
    t.write(off, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), 4));
  };
  if (data[0] & 2) {
    // A driver that got the handshake right (so the fuzzer spends its time on
    // requests): every offered feature, queue 0 of 16 at fixed addresses, DRIVER_OK.
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
    wr(mmio::kQueueSel, 0);
    wr(mmio::kQueueNum, 16);
    wr(mmio::kQueueDescLow, 0x1000);
    wr(mmio::kQueueDriverLow, 0x2000);
    wr(mmio::kQueueDeviceLow, 0x3000);
    wr(mmio::kQueueReady, 1);
    wr(mmio::kStatus, 0xf);
  }
  // Ops: 1 opcode byte + operands.
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
        uint64_t at = take(2) % kRam;
        size_t n = take(1);
        n = std::min<size_t>({n, size - i, kRam - at});
        (void)mem.write(at, std::span<const uint8_t>(data + i, n));
        i += n;
        break;
      }
      case 3:  // notify
        t.handle_notify(static_cast<unsigned>(take(1) % 2));
        break;
      case 4: {  // save + restore
        MmioState s = t.save();
        (void)t.restore(s);
        break;
      }
    }
  }
  return 0;
}
