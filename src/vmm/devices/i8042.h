// I8042: just enough of the PS/2 controller at 0x60 (data) / 0x64
// (status/command) for guests to probe it and to reset the machine:
// command 0xFE on port 0x64 (or pulsing the reset line through the output
// port, command 0xD1) calls the reset callback. Registered as 0x60..0x64.
// A keyboard that ACKs every command (with IRQ 1, answering GET ID and
// RESET as an MF2 keyboard, so Linux's atkbd binds) can be made to press Ctrl-Alt-Del
// (Firecracker's SendCtrlAltDel): the scancodes are queued and IRQ 1 is
// pulsed for each byte while the guest enabled the keyboard interrupt.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>

#include "vmm/devices/bus.h"

namespace vessel::vmm {

struct I8042State {
  uint8_t status = 0x04;   // system flag set: POST passed
  uint8_t control = 0x47;  // keyboard interrupt, system flag, translation
  uint8_t out = 0;         // output buffer (valid when status bit 0)
  uint8_t pending_cmd = 0; // a command that waits for a data byte
  std::array<uint8_t, 16> keys{};  // scancode bytes waiting behind `out`
  uint8_t keys_count = 0;
};

class I8042 : public BusDevice {
 public:
  static constexpr uint8_t kStatusObf = 0x01, kStatusCmd = 0x08;
  static constexpr uint8_t kCmdReadCtr = 0x20, kCmdWriteCtr = 0x60, kCmdSelfTest = 0xaa,
                           kCmdPortTest = 0xab, kCmdWriteOutPort = 0xd1, kCmdWriteAux = 0xd4,
                           kCmdReset = 0xfe;

  static constexpr uint8_t kCtrKbdInt = 0x01, kCtrTranslate = 0x40;
  // Keyboard commands (bytes written to the data port) and the ACK.
  static constexpr uint8_t kKbdGetId = 0xf2, kKbdReset = 0xff, kKbdAck = 0xfa;

  // `irq` pulses IRQ 1 (may be empty: no keyboard interrupts); it is called with
  // the device's lock held and must not call back into the device.
  explicit I8042(std::function<void()> on_reset, std::function<void()> irq = {})
      : on_reset_(std::move(on_reset)), irq_(std::move(irq)) {}

  // Queues Ctrl, Alt, Del presses and releases (scancode set 1 when the
  // guest left translation on, else set 2). False when the queue is full.
  bool trigger_ctrl_alt_del();

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  I8042State save() const;
  void restore(const I8042State& s);

 private:
  void put(uint8_t v);
  void command(uint8_t cmd);
  // A byte for the keyboard; true when IRQ 1 should fire.
  bool data(uint8_t v);
  // Queues a keyboard reply ahead of pending keys; true when IRQ 1 should fire.
  bool reply(std::initializer_list<uint8_t> bytes);
  // Moves the next queued key byte to the output buffer; true when the IRQ should fire.
  bool next_key();
  // A byte waits in the output buffer and the keyboard interrupt is on: IRQ 1 is due.
  bool pending_interrupt() const;
  // Pulses IRQ 1 when `fire`; called with mu_ held (see the .cc).
  void pulse_if(bool fire);

  mutable std::mutex mu_;
  I8042State s_;
  std::function<void()> on_reset_;
  std::function<void()> irq_;
};

}  // namespace vessel::vmm
