// Device models without KVM: bus dispatch, 8250 UART, CMOS RTC, i8042, ACPI PM.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "vmm/devices/acpi_pm.h"
#include "vmm/devices/reset_control.h"
#include "vmm/devices/bus.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"

namespace vessel::vmm {
namespace {

struct Recorder : BusDevice {
  std::vector<std::pair<uint64_t, size_t>> reads, writes;
  void read(uint64_t off, std::span<uint8_t> d) override {
    reads.emplace_back(off, d.size());
    std::fill(d.begin(), d.end(), 0x11);
  }
  void write(uint64_t off, std::span<const uint8_t> d) override { writes.emplace_back(off, d.size()); }
};

TEST(Bus, DispatchesWithOffsetsAndRejectsOverlap) {
  Bus bus;
  Recorder a, b;
  ASSERT_TRUE(bus.insert(&a, 0x100, 0x10, "a"));
  ASSERT_TRUE(bus.insert(&b, 0x200, 0x8, "b"));
  EXPECT_FALSE(bus.insert(&b, 0x10f, 2, "overlaps end of a"));
  EXPECT_FALSE(bus.insert(&b, 0xf8, 0x10, "overlaps start of a"));
  EXPECT_FALSE(bus.insert(&b, 0x104, 1, "inside a"));
  EXPECT_FALSE(bus.insert(&b, 0x300, 0, "empty"));
  EXPECT_TRUE(bus.insert(&b, 0x110, 0x10, "adjacent"));
  uint8_t v[2] = {1, 2};
  EXPECT_TRUE(bus.write(0x104, v));
  ASSERT_EQ(a.writes.size(), 1u);
  EXPECT_EQ(a.writes[0], std::make_pair(uint64_t{4}, size_t{2}));
  uint8_t r[4];
  EXPECT_TRUE(bus.read(0x200, r));
  EXPECT_EQ(r[0], 0x11);
}

TEST(Bus, OutOfRangeAndStraddlingAccessesAreUnclaimed) {
  Bus bus;
  Recorder a;
  ASSERT_TRUE(bus.insert(&a, 0x100, 0x10, "a"));
  uint8_t r[4] = {0, 0, 0, 0};
  EXPECT_FALSE(bus.read(0x50, r));
  EXPECT_EQ(r[0], 0xff);  // open bus
  EXPECT_FALSE(bus.read(0x10e, r));  // straddles the end
  EXPECT_FALSE(bus.write(0x110, r));
  EXPECT_FALSE(bus.write(~0ULL - 1, r));
  EXPECT_TRUE(a.reads.empty());
  EXPECT_TRUE(a.writes.empty());
}

struct SerialFixture : ::testing::Test {
  std::vector<bool> irq;
  std::string out;
  Serial s{[this](bool l) { irq.push_back(l); }, [this](uint8_t b) { out.push_back(static_cast<char>(b)); }};
  uint8_t rd(uint64_t off) {
    uint8_t v;
    s.read(off, std::span<uint8_t>(&v, 1));
    return v;
  }
  void wr(uint64_t off, uint8_t v) { s.write(off, std::span<const uint8_t>(&v, 1)); }
};

TEST_F(SerialFixture, TransmitGoesToOutputAndLsrShowsEmpty) {
  wr(0, 'o');
  wr(0, 'k');
  EXPECT_EQ(out, "ok");
  EXPECT_EQ(rd(5) & (Serial::kLsrThre | Serial::kLsrTemt), Serial::kLsrThre | Serial::kLsrTemt);
  EXPECT_EQ(rd(5) & Serial::kLsrDr, 0);
  EXPECT_TRUE(irq.empty());  // no interrupt enabled
}

TEST_F(SerialFixture, DivisorLatch) {
  wr(3, 0x80);  // DLAB
  wr(0, 0x01);
  wr(1, 0x00);
  EXPECT_EQ(rd(0), 0x01);
  wr(3, 0x03);
  EXPECT_TRUE(out.empty());  // DLL write is not data
}

TEST_F(SerialFixture, ReceiveRaisesRdaInterruptUntilDrained) {
  wr(1, Serial::kIerRda);
  uint8_t in[] = {'a', 'b'};
  EXPECT_EQ(s.enqueue_input(in), 2u);
  ASSERT_EQ(irq, std::vector<bool>{true});
  EXPECT_EQ(rd(2) & 0x0f, Serial::kIirRda);
  EXPECT_EQ(rd(5) & Serial::kLsrDr, Serial::kLsrDr);
  EXPECT_EQ(rd(0), 'a');
  EXPECT_EQ(irq.size(), 1u);
  EXPECT_EQ(rd(0), 'b');
  EXPECT_EQ(irq, (std::vector<bool>{true, false}));
  EXPECT_EQ(rd(2) & 0x0f, Serial::kIirNone);
}

TEST_F(SerialFixture, ThreInterruptOnEnableAndClearedByIirRead) {
  wr(1, Serial::kIerThre);
  EXPECT_EQ(irq, std::vector<bool>{true});
  EXPECT_EQ(rd(2) & 0x0f, Serial::kIirThre);
  EXPECT_EQ(irq, (std::vector<bool>{true, false}));
  EXPECT_EQ(rd(2) & 0x0f, Serial::kIirNone);
  wr(0, 'x');  // THR empties again at once
  EXPECT_EQ(irq.back(), true);
}

TEST_F(SerialFixture, FifoBitsAndLoopback) {
  wr(2, 0x01);  // enable FIFO
  EXPECT_EQ(rd(2) & 0xc0, 0xc0);
  wr(4, Serial::kMcrLoop | 0x0a);  // loop, RTS, OUT2
  EXPECT_EQ(rd(6) & 0xf0, 0x90);   // CTS + DCD, what Linux's 8250 probe checks
  wr(0, 'L');
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(rd(0), 'L');
}

TEST_F(SerialFixture, FifoFullDropsInputAndSaveRestoreKeepsIt) {
  std::vector<uint8_t> many(100, 'z');
  EXPECT_EQ(s.enqueue_input(many), Serial::kFifoSize);
  EXPECT_EQ(s.input_space(), 0u);
  SerialState st = s.save();
  EXPECT_EQ(st.rx_count, Serial::kFifoSize);
  Serial t(nullptr, nullptr);
  t.restore(st);
  EXPECT_EQ(t.input_space(), 0u);
}

// A snapshot or migration taken while the guest's 8250 driver transmits: it
// acknowledged THRE (IIR read), wrote bytes, and waits for the next THRE
// interrupt (Linux sends only on it). The UART restored in the new VMM drives
// its line high again (the new VM's interrupt controller never saw it), IIR
// reports THRE, and the guest's next byte goes out and raises it again.
TEST_F(SerialFixture, RestoreMidTransmitRaisesThePendingThreInterrupt) {
  wr(2, 0x07);  // FIFO on, both FIFOs cleared
  wr(1, Serial::kIerRda | Serial::kIerThre);
  EXPECT_EQ(rd(2) & 0x0f, Serial::kIirThre);  // the ISR acknowledges
  wr(0, 'T');
  wr(0, 'I');
  SerialState st = s.save();
  EXPECT_TRUE(st.thr_interrupt_pending);
  EXPECT_TRUE(st.irq_level);

  std::vector<bool> irq2;
  std::string out2;
  Serial t([&](bool l) { irq2.push_back(l); }, [&](uint8_t b) { out2.push_back(static_cast<char>(b)); });
  t.restore(st);
  ASSERT_EQ(irq2, std::vector<bool>{true});
  uint8_t v = 0;
  t.read(2, std::span<uint8_t>(&v, 1));
  EXPECT_EQ(v, Serial::kIirFifo | Serial::kIirThre);
  EXPECT_EQ(irq2, (std::vector<bool>{true, false}));
  uint8_t c = 'C';
  t.write(0, std::span<const uint8_t>(&c, 1));
  EXPECT_EQ(out2, "C");
  EXPECT_EQ(irq2, (std::vector<bool>{true, false, true}));
}

// Restoring a UART with nothing pending drives its line low (a line left high
// by whatever came before in the new VM would be wrong).
TEST_F(SerialFixture, RestoreWithNothingPendingDrivesTheLineLow) {
  wr(1, Serial::kIerThre);
  EXPECT_EQ(rd(2) & 0x0f, Serial::kIirThre);
  SerialState st = s.save();
  EXPECT_FALSE(st.thr_interrupt_pending);
  EXPECT_FALSE(st.irq_level);
  std::vector<bool> irq2;
  Serial t([&](bool l) { irq2.push_back(l); }, nullptr);
  t.restore(st);
  EXPECT_EQ(irq2, std::vector<bool>{false});
  uint8_t v = 0;
  t.read(2, std::span<uint8_t>(&v, 1));
  EXPECT_EQ(v & 0x0f, Serial::kIirNone);
}

// Linux's mc146818_set_time (hwclock --systohc): SET up, the time registers, SET down;
// the clock then runs from the written time as the host's advances.
TEST(Rtc, GuestSetsTheClock) {
  time_t host = 1709214356;  // 2024-02-29 13:45:56 UTC
  Rtc rtc([&] { return host; });
  auto put = [&](uint8_t reg, uint8_t v) {
    rtc.write(0, std::span<const uint8_t>(&reg, 1));
    rtc.write(1, std::span<const uint8_t>(&v, 1));
  };
  auto get = [&](uint8_t reg) {
    uint8_t v = 0;
    rtc.write(0, std::span<const uint8_t>(&reg, 1));
    rtc.read(1, std::span<uint8_t>(&v, 1));
    return v;
  };
  put(0x0b, Rtc::kRegB24h | Rtc::kRegBSet);
  put(0x00, 0x05); put(0x02, 0x04); put(0x04, 0x03); put(0x07, 0x02); put(0x08, 0x01); put(0x09, 0x30);
  host += 7;  // the clock stands while SET is up: the latched values read back
  EXPECT_EQ(get(0x00), 0x05);
  EXPECT_EQ(get(0x32), 0x20);  // not written: latched from the running clock
  put(0x0b, Rtc::kRegB24h);    // 2030-01-02 03:04:05 from now on
  host += 61;
  EXPECT_EQ(get(0x00), 0x06);
  EXPECT_EQ(get(0x02), 0x05);
  EXPECT_EQ(get(0x04), 0x03);
  EXPECT_EQ(get(0x07), 0x02);
  EXPECT_EQ(get(0x08), 0x01);
  EXPECT_EQ(get(0x09), 0x30);
  put(0x04, 0x10);  // one field without SET: at once, the others keep running
  EXPECT_EQ(get(0x04), 0x10);
  EXPECT_EQ(get(0x02), 0x05);
  // 2030-01-02 03:05:06 (1893553506) with the hour set to 10, against the host then.
  EXPECT_EQ(rtc.save().offset, int64_t{1893553506} + 7 * 3600 - (1709214356 + 68));
}

TEST(Rtc, ReadsBcdTimeAndBinaryOnRequest) {
  // 2024-02-29 13:45:56 UTC, a Thursday.
  Rtc rtc([] { return time_t{1709214356}; });
  auto get = [&](uint8_t reg) {
    uint8_t i = reg, v = 0;
    rtc.write(0, std::span<const uint8_t>(&i, 1));
    rtc.read(1, std::span<uint8_t>(&v, 1));
    return v;
  };
  EXPECT_EQ(get(0x00), 0x56);
  EXPECT_EQ(get(0x02), 0x45);
  EXPECT_EQ(get(0x04), 0x13);
  EXPECT_EQ(get(0x06), 0x05);
  EXPECT_EQ(get(0x07), 0x29);
  EXPECT_EQ(get(0x08), 0x02);
  EXPECT_EQ(get(0x09), 0x24);
  EXPECT_EQ(get(0x32), 0x20);
  EXPECT_EQ(get(0x0b) & Rtc::kRegB24h, Rtc::kRegB24h);
  EXPECT_EQ(get(0x0d), 0x80);
  EXPECT_EQ(get(0x0a) & 0x80, 0);  // no update in progress
  uint8_t sel = 0x0b, bin = Rtc::kRegB24h | Rtc::kRegBBinary;
  rtc.write(0, std::span<const uint8_t>(&sel, 1));
  rtc.write(1, std::span<const uint8_t>(&bin, 1));
  EXPECT_EQ(get(0x00), 56);
  EXPECT_EQ(get(0x80 | 0x04), 13);  // the NMI-mask bit of the index is ignored
}

TEST(I8042, ResetCommandCallsBack) {
  int resets = 0;
  I8042 k([&] { ++resets; });
  uint8_t st;
  k.read(4, std::span<uint8_t>(&st, 1));
  EXPECT_EQ(st & 0x02, 0);  // input buffer empty: Linux's kb_wait() proceeds
  EXPECT_EQ(st & 0x10, 0x10);  // not inhibited: no "i8042: Warning: Keylock active"
  uint8_t cmd = I8042::kCmdSelfTest, v = 0;
  k.write(4, std::span<const uint8_t>(&cmd, 1));
  k.read(0, std::span<uint8_t>(&v, 1));
  EXPECT_EQ(v, 0x55);
  EXPECT_EQ(resets, 0);
  cmd = I8042::kCmdReset;
  k.write(4, std::span<const uint8_t>(&cmd, 1));
  EXPECT_EQ(resets, 1);
}

// Linux's atkbd sends keyboard commands and waits for the ACK's interrupt.
TEST(I8042, KeyboardCommandsAreAckedWithAnInterrupt) {
  int irqs = 0;
  I8042 k([] {}, [&] { ++irqs; });
  auto out = [&] {
    uint8_t st = 0, v = 0;
    k.read(4, std::span<uint8_t>(&st, 1));
    if (!(st & I8042::kStatusObf)) return -1;
    k.read(0, std::span<uint8_t>(&v, 1));
    return int{v};
  };
  uint8_t setleds = 0xed, zero = 0;
  k.write(0, std::span<const uint8_t>(&setleds, 1));
  EXPECT_EQ(irqs, 1);
  EXPECT_EQ(out(), 0xfa);
  k.write(0, std::span<const uint8_t>(&zero, 1));  // its parameter byte
  EXPECT_EQ(out(), 0xfa);
  EXPECT_EQ(irqs, 2);
  uint8_t getid = I8042::kKbdGetId;
  k.write(0, std::span<const uint8_t>(&getid, 1));
  EXPECT_EQ(out(), 0xfa);
  EXPECT_EQ(out(), 0xab);
  EXPECT_EQ(out(), 0x41);  // translated (the default control byte)
  EXPECT_EQ(out(), -1);
  EXPECT_EQ(irqs, 5);  // one per byte
  // With the keyboard interrupt off: the ACK is there, no IRQ.
  uint8_t wctr = I8042::kCmdWriteCtr, ctr = 0x04;
  k.write(4, std::span<const uint8_t>(&wctr, 1));
  k.write(0, std::span<const uint8_t>(&ctr, 1));
  k.write(0, std::span<const uint8_t>(&setleds, 1));
  EXPECT_EQ(out(), 0xfa);
  EXPECT_EQ(irqs, 5);
}

// IRQ 1 is a pulse: a guest that missed one must get another when it turns the
// keyboard interrupt back on, or when more keys arrive behind the unread byte.
TEST(I8042, AnUnreadByteInterruptsAgain) {
  int irqs = 0;
  I8042 k([] {}, [&] { ++irqs; });
  uint8_t wctr = I8042::kCmdWriteCtr, off = 0x44, on = 0x45, setleds = 0xed;
  k.write(4, std::span<const uint8_t>(&wctr, 1));
  k.write(0, std::span<const uint8_t>(&off, 1));
  k.write(0, std::span<const uint8_t>(&setleds, 1));  // ACK waits, interrupt off: no IRQ
  EXPECT_EQ(irqs, 0);
  k.write(4, std::span<const uint8_t>(&wctr, 1));
  k.write(0, std::span<const uint8_t>(&on, 1));
  EXPECT_EQ(irqs, 1);  // turned on with the ACK waiting
  EXPECT_TRUE(k.trigger_ctrl_alt_del());
  EXPECT_EQ(irqs, 2);  // the ACK is still unread: interrupt again
  uint8_t v = 0;
  k.read(0, std::span<uint8_t>(&v, 1));
  EXPECT_EQ(v, 0xfa);
  EXPECT_EQ(irqs, 3);  // and the first key follows
  k.read(0, std::span<uint8_t>(&v, 1));
  EXPECT_EQ(v, 0x1d);  // Ctrl, set 1 (translated)
}

// KVM's IOAPIC for an edge-triggered pin: a rise while the pin's IRR bit is
// still set (the previous pulse has not fallen yet) is dropped as coalesced.
struct EdgePin {
  std::mutex mu;
  bool irr = false;
  int edges = 0;
  void set(bool level) {
    std::lock_guard lock(mu);
    if (!level) irr = false;
    else if (!irr) irr = true, ++edges;
  }
};

// SendCtrlAltDel's first pulse (the API thread) is taken at once by the guest on
// another CPU, whose read of the byte queues the next one and pulses again: that
// pulse must not begin before the first has ended, or its edge is lost and the
// guest never reads the next key (seen under load: Ctrl-Alt-Del stuck after Ctrl).
TEST(I8042, PulsesOfTwoThreadsDoNotOverlap) {
  EdgePin pin;
  I8042* dev = nullptr;
  std::thread guest;
  bool first = true;
  I8042 k([] {}, [&] {
    pin.set(true);
    if (std::exchange(first, false)) {
      guest = std::thread([&] {
        uint8_t v = 0;
        dev->read(0, std::span<uint8_t>(&v, 1));
      });
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the guest's read would land here
    }
    pin.set(false);
  });
  dev = &k;
  ASSERT_TRUE(k.trigger_ctrl_alt_del());
  guest.join();
  EXPECT_EQ(pin.edges, 2);
}

TEST(AcpiPm, S5PowersOffOtherSleepStatesDoNot) {
  int off = 0;
  AcpiPm pm([&] { ++off; });
  uint8_t s3 = AcpiPm::kSlpEn | (3 << 2), typ_only = 5 << 2, s5 = AcpiPm::kPoweroffValue;
  pm.write(0, std::span<const uint8_t>(&s3, 1));
  pm.write(0, std::span<const uint8_t>(&typ_only, 1));
  EXPECT_EQ(off, 0);
  pm.write(0, std::span<const uint8_t>(&s5, 1));
  EXPECT_EQ(off, 1);
  EXPECT_EQ(s5, 0x34);
}

TEST(AcpiPm, TransitionRegisterRecordsTheAnnouncedState) {
  AcpiPm pm([] {});
  EXPECT_FALSE(pm.s5_announced());
  uint8_t v = 5, got = 0;
  pm.write(AcpiPm::kTransition, std::span<const uint8_t>(&v, 1));
  EXPECT_TRUE(pm.s5_announced());
  pm.read(AcpiPm::kTransition, std::span<uint8_t>(&got, 1));
  EXPECT_EQ(got, 5);
  v = 0;  // back to the working state (resume)
  pm.write(AcpiPm::kTransition, std::span<const uint8_t>(&v, 1));
  EXPECT_FALSE(pm.s5_announced());
}

TEST(ResetControl, RstCpuResetsSysRstIsKept) {
  int resets = 0;
  ResetControl rc([&] { ++resets; });
  uint8_t v = ResetControl::kSysRst, got = 0;
  rc.write(0, std::span<const uint8_t>(&v, 1));  // Linux: "request hard reset" first
  EXPECT_EQ(resets, 0);
  rc.read(0, std::span<uint8_t>(&got, 1));
  EXPECT_EQ(got, ResetControl::kSysRst);
  v = 0x0e;  // SYS_RST | RST_CPU | FULL_RST: do it
  rc.write(0, std::span<const uint8_t>(&v, 1));
  EXPECT_EQ(resets, 1);
}

}  // namespace
}  // namespace vessel::vmm
