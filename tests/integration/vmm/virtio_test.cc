// Tier-1 virtio tests on the host's /dev/kvm: a tiny guest writes QueueNotify,
// KVM signals the ioeventfd, the device worker serves the chain.
#include <poll.h>

#include "integration/vmm/tiny_guest.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/virtio/rng/rng.h"
#include "vmm/virtio/virtio.h"

namespace vessel::vmm::testing {
namespace {

using namespace virtio;

constexpr uint64_t kDesc = 0x200000, kAvail = 0x201000, kUsed = 0x202000, kBuf = 0x203000;

// 64-bit: mov rax, addr; mov dword [rax], v
void mmio_write32(Code& c, uint64_t addr, uint32_t v) {
  c.raw({0x48, 0xb8});
  for (int i = 0; i < 8; ++i) c.bytes.push_back(static_cast<uint8_t>(addr >> (8 * i)));
  c.raw({0xc7, 0x00});
  for (int i = 0; i < 4; ++i) c.bytes.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

TEST(VmmVirtio, IoeventfdNotifyIsServedByTheWorker) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  mmio_write32(c, x86::kVirtioMmioStart + mmio::kQueueNotify, 0);
  // mov rbx, used idx; wait: cmp word [rbx], 0; je wait
  c.raw({0x48, 0xbb});
  for (int i = 0; i < 8; ++i) c.bytes.push_back(static_cast<uint8_t>((kUsed + 2) >> (8 * i)));
  c.raw({0x66, 0x83, 0x3b, 0x00, 0x74, 0xfa});
  c.print("served").poweroff().hlt();
  MachineConfig cfg;
  cfg.memory = 64ULL << 20;
  cfg.serial_out = cap.fn();
  auto m = make_guest(c, cfg);
  ASSERT_TRUE(m) << m.error().message();
  auto t = (*m)->add_virtio_device(std::make_unique<RngDevice>(), "virtio-rng");
  ASSERT_TRUE(t) << t.error().message();

  // The driver's part, done by hand: rings, one 64-byte buffer, DRIVER_OK.
  GuestMemory& mem = (*m)->memory();
  ASSERT_TRUE(mem.write_obj(kDesc, Descriptor{kBuf, 64, kDescFWrite, 0}));
  ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 4, 0));
  ASSERT_TRUE(mem.write_obj<uint16_t>(kAvail + 2, 1));
  MmioState s = (*t)->save();
  s.status = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk;
  s.driver_features = bit(kFVersion1);
  s.queues[0].size = 16;
  s.queues[0].ready = true;
  s.queues[0].desc_table = kDesc;
  s.queues[0].avail_ring = kAvail;
  s.queues[0].used_ring = kUsed;
  ASSERT_TRUE((*t)->restore(s));

  ASSERT_TRUE((*m)->start());
  pollfd p{(*m)->stop_fd(), POLLIN, 0};
  int r = ::poll(&p, 1, 20000);
  RunResult res = (*m)->finish();
  ASSERT_EQ(r, 1) << "the guest did not see its buffer used within 20 s";
  EXPECT_EQ(res.reason, StopReason::kPoweroff) << res.detail;
  EXPECT_EQ(cap.get(), "served");
  EXPECT_EQ(*mem.read_obj<uint32_t>(kUsed + 8), 64u);  // used len
  EXPECT_NE(*mem.read_obj<uint64_t>(kBuf), 0u);
  EXPECT_TRUE((*t)->save().interrupt_status & kInterruptUsedBuffer);
}

TEST(VmmVirtio, DevicesAfterStartAreRefused) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.spin();
  MachineConfig cfg;
  cfg.memory = 64ULL << 20;
  auto m = make_guest(c, cfg);
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE((*m)->start());
  EXPECT_FALSE((*m)->add_virtio_device(std::make_unique<RngDevice>(), "late").ok());
  (*m)->finish();
}

// A machine whose vCPU threads were started parked and never ran (a
// migration's receiver builds it so, before the devices come with the state)
// still takes devices; once resumed, it does not.
TEST(VmmVirtio, DevicesComeWhileStartedParkedUntilTheGuestRuns) {
  VESSEL_REQUIRE_KVM();
  Code c;
  c.spin();
  MachineConfig cfg;
  cfg.memory = 64ULL << 20;
  auto m = Machine::create_restored(cfg, *GuestMemory::create(cfg.memory, x86::kMmioHoleStart, x86::kMmioHoleEnd));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE((*m)->memory().write(0x1000, c.bytes));
  ASSERT_TRUE((*m)->start_paused());
  auto t = (*m)->add_virtio_device(std::make_unique<RngDevice>(), "while parked");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ((*m)->virtio_count(), 1u);
  // What a restore sets before resume(): here a real-mode guest spinning at 0x1000
  // (the machine has no CPUID set, as before a restore).
  x86::BootEntry e;
  e.mode = x86::EntryMode::kReal16;
  e.ip = 0x1000;
  ASSERT_TRUE(x86::apply_entry((*m)->memory(), (*m)->vcpu_fd(0), e));
  ASSERT_TRUE((*m)->resume());
  EXPECT_FALSE((*m)->add_virtio_device(std::make_unique<RngDevice>(), "late").ok());
  (*m)->finish();
}

}  // namespace
}  // namespace vessel::vmm::testing
