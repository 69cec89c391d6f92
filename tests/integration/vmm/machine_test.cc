// Tier-1 VMM tests: tiny machine-code guests on the host's /dev/kvm.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <tuple>

#include "integration/vmm/tiny_guest.h"

namespace vessel::vmm::testing {
namespace {

MachineConfig config(SerialCapture& cap, unsigned cpus = 1) {
  MachineConfig c;
  c.cpus = cpus;
  c.memory = 64ULL << 20;
  c.serial_out = cap.fn();
  return c;
}

TEST(VmmMachine, RealModeGuestWritesSerialAndPowersOff) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.print("Hi").poweroff().hlt();
  auto m = make_guest(c, config(cap));
  ASSERT_TRUE(m) << m.error().message();
  RunResult r = (*m)->run();
  EXPECT_EQ(r.reason, StopReason::kPoweroff) << r.detail;
  EXPECT_EQ(cap.get(), "Hi");
}

TEST(VmmMachine, LongModeGuestWritesSerialAndPowersOff) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  c.print("long mode\n").poweroff().hlt();
  auto m = make_guest(c, config(cap));
  ASSERT_TRUE(m) << m.error().message();
  RunResult r = (*m)->run();
  EXPECT_EQ(r.reason, StopReason::kPoweroff) << r.detail;
  EXPECT_EQ(cap.get(), "long mode\n");
}

// Records MMIO writes.
struct MmioRecorder : BusDevice {
  std::mutex mu;
  std::vector<std::pair<uint64_t, uint8_t>> writes;
  void read(uint64_t, std::span<uint8_t> d) override { std::fill(d.begin(), d.end(), 0); }
  void write(uint64_t off, std::span<const uint8_t> d) override {
    std::lock_guard lock(mu);
    writes.emplace_back(off, d[0]);
  }
};

TEST(VmmMachine, MmioWritesReachTheBusDevice) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  c.mmio_write8(0xd0000010, 0x5a).mmio_write8(0xd0000011, 0xa5).poweroff().hlt();
  auto m = make_guest(c, config(cap));
  ASSERT_TRUE(m) << m.error().message();
  MmioRecorder dev;
  ASSERT_TRUE((*m)->mmio_bus().insert(&dev, 0xd0000000, 0x1000, "recorder"));
  RunResult r = (*m)->run();
  EXPECT_EQ(r.reason, StopReason::kPoweroff) << r.detail;
  ASSERT_EQ(dev.writes.size(), 2u);
  EXPECT_EQ(dev.writes[0], std::make_pair(uint64_t{0x10}, uint8_t{0x5a}));
  EXPECT_EQ(dev.writes[1], std::make_pair(uint64_t{0x11}, uint8_t{0xa5}));
}

TEST(VmmMachine, I8042ResetEndsTheVm) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.out(0x64, 0xfe).spin();
  auto m = make_guest(c, config(cap));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ((*m)->run().reason, StopReason::kReset);
}

TEST(VmmMachine, HltWithoutIrqchipStops) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.print("x").hlt();
  MachineConfig cfg = config(cap);
  cfg.irqchip = false;
  auto m = make_guest(c, cfg);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ((*m)->run().reason, StopReason::kHalt);
  EXPECT_EQ(cap.get(), "x");
}

TEST(VmmMachine, TripleFaultIsAnErrorWithRegisters) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  c.raw({0x0f, 0x0b});  // ud2 with an empty IDT: #UD -> #GP -> #DF -> shutdown
  auto m = make_guest(c, config(cap));
  ASSERT_TRUE(m) << m.error().message();
  RunResult r = (*m)->run();
  EXPECT_EQ(r.reason, StopReason::kError);
  EXPECT_NE(r.detail.find("triple fault"), std::string::npos) << r.detail;
  EXPECT_NE(r.detail.find("rip="), std::string::npos) << r.detail;
}

// Linux's reboot=pci: "hard reset" requested first (no reset yet), then RST_CPU.
TEST(VmmMachine, RealModeCf9ResetEndsTheVm) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.out(0xcf9, 0x02).print("x").out(0xcf9, 0x0e).print("y").spin();
  auto m = make_guest(c, config(cap));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ((*m)->run().reason, StopReason::kReset);
  EXPECT_EQ(cap.get(), "x");
}

// A triple fault after the guest announced S5 through \_TTS (port 0x602) is its
// way to reset (Linux's reboot=t), not a crash.
TEST(VmmMachine, TripleFaultAfterAnnouncedRestartIsAReset) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  c.out(0x602, 5).raw({0x0f, 0x0b});
  auto m = make_guest(c, config(cap));
  ASSERT_TRUE(m) << m.error().message();
  RunResult r = (*m)->run();
  EXPECT_EQ(r.reason, StopReason::kReset) << r.detail;
}

TEST(VmmMachine, StopKicksASpinningGuest) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  c.print("spin").spin();
  auto m = make_guest(c, config(cap, 2));
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_TRUE((*m)->start());
  auto t0 = std::chrono::steady_clock::now();
  while (cap.get() != "spin" && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  (*m)->request_stop(StopReason::kStopped);
  RunResult r = (*m)->finish();
  EXPECT_EQ(r.reason, StopReason::kStopped);
  EXPECT_EQ(cap.get(), "spin");
}

// A guest that prints '.' every few thousand instructions, for ever.
Code counting_guest() {
  Code c;
  c.long_mode = true;
  // mov dx, 0x3f8; mov al, '.'; L: out dx, al; mov ecx, 0x1000; D: loop D; jmp L
  c.raw({0x66, 0xba, 0xf8, 0x03, 0xb0, '.', 0xee, 0xb9, 0x00, 0x10, 0x00, 0x00, 0xe2, 0xfe, 0xeb, 0xf6});
  return c;
}

size_t wait_for_output(SerialCapture& cap, size_t more_than) {
  auto t0 = std::chrono::steady_clock::now();
  while (cap.get().size() <= more_than && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return cap.get().size();
}

TEST(VmmMachine, PauseStopsTheGuestAndResumeContinues) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  auto m = make_guest(counting_guest(), config(cap, 2));
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_FALSE((*m)->pause()) << "pause before start must fail";
  ASSERT_TRUE((*m)->start());
  ASSERT_GT(wait_for_output(cap, 0), 0u);
  EXPECT_FALSE((*m)->resume()) << "resume of a running VM must fail";

  for (int round = 0; round < 3; ++round) {
    auto p = (*m)->pause();
    ASSERT_TRUE(p) << p.error().message();
    EXPECT_TRUE((*m)->paused());
    EXPECT_FALSE((*m)->pause()) << "a second pause must fail";
    size_t at_pause = cap.get().size();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(cap.get().size(), at_pause) << "the guest ran while paused";
    auto r = (*m)->resume();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_FALSE((*m)->paused());
    EXPECT_GT(wait_for_output(cap, at_pause), at_pause) << "the guest did not continue after resume";
  }
  // A paused machine stops cleanly.
  ASSERT_TRUE((*m)->pause());
  RunResult r = (*m)->finish();
  EXPECT_EQ(r.reason, StopReason::kStopped);
}

TEST(VmmMachine, SmpMachineWithLargeMemoryAndHole) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  c.print("smp").poweroff().hlt();
  MachineConfig cfg = config(cap, 4);
  cfg.memory = 4ULL << 30;  // 3 GiB below the hole, 1 GiB above 4 GiB (sparse memfd)
  auto m = make_guest(c, cfg);
  ASSERT_TRUE(m) << m.error().message();
  ASSERT_EQ((*m)->memory().regions().size(), 2u);
  EXPECT_EQ((*m)->memory().regions()[1].guest_addr, 4ULL << 30);
  RunResult r = (*m)->run();
  EXPECT_EQ(r.reason, StopReason::kPoweroff) << r.detail;
  EXPECT_EQ(cap.get(), "smp");
}

// The in-kernel 8259s start masked, based at 0x08/0x70 (as a BIOS leaves
// them): a guest that never programs them (Linux on hardware-reduced ACPI)
// does not take an ISA device's line through them as an exception vector
// (COM1's IRQ 4 came as vector 4 from KVM's reset state) on the boot CPU,
// whose LINT0 is ExtINT.
TEST(VmmMachine, UnprogrammedPicPassesNoLegacyIrq) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  c.print("up").raw({0xfb}).hlt().print("woke").hlt();  // sti; hlt: no IDT, so any interrupt triple-faults
  auto m = make_guest(c, config(cap));
  ASSERT_TRUE(m) << m.error().message();
  for (auto [chip, base, imr] : {std::tuple{KVM_IRQCHIP_PIC_MASTER, 0x08, 0xfb}, std::tuple{KVM_IRQCHIP_PIC_SLAVE, 0x70, 0xff}}) {
    auto pic = (*m)->vm_fd().get_irqchip(static_cast<uint32_t>(chip));
    ASSERT_TRUE(pic) << pic.error().message();
    EXPECT_EQ(pic->chip.pic.irq_base, base) << "chip " << chip;
    EXPECT_EQ(pic->chip.pic.imr, imr) << "chip " << chip;
  }
  ASSERT_TRUE((*m)->start());
  auto t0 = std::chrono::steady_clock::now();
  while (cap.get() != "up" && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // into its hlt
  for (uint32_t irq : {1u, 4u}) {
    ASSERT_TRUE((*m)->vm_fd().irq_line(irq, true));
    ASSERT_TRUE((*m)->vm_fd().irq_line(irq, false));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  (*m)->request_stop(StopReason::kStopped);
  RunResult r = (*m)->finish();
  EXPECT_EQ(r.reason, StopReason::kStopped) << r.detail;
  EXPECT_EQ(cap.get(), "up");
}

// Dirty logging turned on while the machine exists (as a live migration
// does): after the first take (everything, when KVM's manual protection
// makes slots start dirty), a take reports the page the guest wrote and not
// the ones it left alone, and the next take no longer reports it. With the
// slots' bitmaps (ring_entries 0) and with the dirty ring where KVM has one.
void dirty_logging_reports_what_the_guest_writes(uint32_t ring_entries) {
  SerialCapture cap;
  Code c;
  c.long_mode = true;
  c.mmio_write8(0x300000, 0x5a).poweroff().hlt();
  MachineConfig cfg = config(cap);
  cfg.dirty_ring_entries = ring_entries;
  auto m = make_guest(c, cfg);
  ASSERT_TRUE(m) << m.error().message();
  if (ring_entries == 0) {
    EXPECT_EQ((*m)->dirty_ring_entries(), 0u);
  }
  ASSERT_TRUE((*m)->set_dirty_logging(true));
  std::printf("dirty ring: %u entries%s%s; KVM manual dirty-log protection: %s\n", (*m)->dirty_ring_entries(),
              (*m)->dirty_ring_note().empty() ? "" : ", ", (*m)->dirty_ring_note().c_str(),
              (*m)->manual_dirty_protect() ? "on" : "off");
  auto first = (*m)->take_dirty_pages();
  ASSERT_TRUE(first) << first.error().message();
  auto bit = [](const std::vector<uint64_t>& b, uint64_t page) { return (b[page / 64] >> (page % 64)) & 1; };
  if ((*m)->manual_dirty_protect()) {
    EXPECT_TRUE(bit(*first, 0x380)) << "slots start dirty";
  }
  RunResult r = (*m)->run();
  EXPECT_EQ(r.reason, StopReason::kPoweroff) << r.detail;
  auto after = (*m)->take_dirty_pages();
  ASSERT_TRUE(after) << after.error().message();
  EXPECT_TRUE(bit(*after, 0x300)) << "the page the guest wrote";
  EXPECT_FALSE(bit(*after, 0x380)) << "a page nobody wrote";
  auto again = (*m)->take_dirty_pages();
  ASSERT_TRUE(again);
  EXPECT_FALSE(bit(*again, 0x300)) << "taken already";
  EXPECT_EQ(std::memcmp((*m)->memory().linear(0x300000), "\x5a", 1), 0);
}

TEST(VmmMachine, DirtyLoggingTurnedOnLaterReportsWhatTheGuestWrites) {
  VESSEL_REQUIRE_KVM();
  dirty_logging_reports_what_the_guest_writes(0);
}

TEST(VmmMachine, DirtyRingReportsWhatTheGuestWrites) {
  VESSEL_REQUIRE_KVM();
  dirty_logging_reports_what_the_guest_writes(4096);
}

// A guest that writes more pages than its dirty ring holds: the vCPU stops
// on the full ring (KVM_EXIT_DIRTY_RING_FULL) until the machine empties it,
// and no page is lost on the way.
TEST(VmmMachine, FullDirtyRingIsEmptiedAndLosesNoPage) {
  VESSEL_REQUIRE_KVM();
  SerialCapture cap;
  constexpr uint64_t kFirst = 0x400, kPages = 8192;  // 32 MiB from 4 MiB
  Code c;
  c.long_mode = true;
  // mov rax, kFirst * 4096; mov ecx, kPages; L: mov byte [rax], 1; add rax, 0x1000; loop L
  c.raw({0x48, 0xb8, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00});
  c.raw({0xb9, 0x00, 0x20, 0x00, 0x00});
  c.raw({0xc6, 0x00, 0x01, 0x48, 0x05, 0x00, 0x10, 0x00, 0x00, 0xe2, 0xf5});
  c.poweroff().hlt();
  MachineConfig cfg = config(cap);
  cfg.dirty_ring_entries = 512;  // the smallest KVM takes (one page of entries) is 256
  auto m = make_guest(c, cfg);
  ASSERT_TRUE(m) << m.error().message();
  if ((*m)->dirty_ring_entries() == 0) GTEST_SKIP() << "no dirty ring here: " << (*m)->dirty_ring_note();
  ASSERT_TRUE((*m)->set_dirty_logging(true));
  ASSERT_TRUE((*m)->take_dirty_pages());
  RunResult r = (*m)->run();
  ASSERT_EQ(r.reason, StopReason::kPoweroff) << r.detail;
  auto bits = (*m)->take_dirty_pages();
  ASSERT_TRUE(bits) << bits.error().message();
  uint64_t missing = 0, extra = 0;
  for (uint64_t p = 0; p < (64ULL << 20) / 4096; ++p) {
    bool set = ((*bits)[p / 64] >> (p % 64)) & 1;
    bool written = p >= kFirst && p < kFirst + kPages;
    if (written && !set) ++missing;
    if (!written && set && p != kCodeAddr / 4096) ++extra;
  }
  EXPECT_EQ(missing, 0u) << "pages the guest wrote that the log lost";
  EXPECT_LT(extra, 16u) << "pages reported that the guest did not write (its stack may count)";
  std::printf("%llu full-ring exits for %llu pages with a ring of %u\n",
              static_cast<unsigned long long>((*m)->dirty_ring_full_exits()),
              static_cast<unsigned long long>(kPages), (*m)->dirty_ring_entries());
  EXPECT_GE((*m)->dirty_ring_full_exits(), kPages / 512 / 2) << "the ring did fill";
  EXPECT_EQ(*static_cast<const uint8_t*>((*m)->memory().linear((kFirst + kPages - 1) * 4096)), 1);
}

TEST(VmmMachine, BadKvmDeviceIsAnError) {
  MachineConfig cfg;
  cfg.kvm_device = "/dev/null";
  auto m = Machine::create(cfg);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("/dev/null"), std::string::npos) << m.error().message();
}

}  // namespace
}  // namespace vessel::vmm::testing
