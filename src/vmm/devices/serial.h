// Serial: a 16550A UART (as COM1 at 0x3f8, IRQ 4) on the port I/O bus.
//
// Transmit is instant: each byte written to THR goes to the output sink.
// Received bytes wait in a 64-byte FIFO filled by enqueue_input(). The
// interrupt line follows the IIR (high while an enabled interrupt is
// pending) and is driven through IrqFn, so the device needs no KVM.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "vmm/devices/bus.h"

namespace vessel::vmm {

// Everything a snapshot needs to recreate the UART (behaviour is in Serial).
struct SerialState {
  uint8_t dll = 0x0c;  // 9600 baud until the guest programs it
  uint8_t dlm = 0;
  uint8_t ier = 0;
  uint8_t lcr = 0x03;  // 8N1
  uint8_t mcr = 0x08;  // OUT2
  uint8_t msr = 0xb0;  // DCD, DSR, CTS
  uint8_t scr = 0;
  uint8_t fcr = 0;
  bool thr_interrupt_pending = false;
  bool irq_level = false;
  std::array<uint8_t, 64> rx{};
  uint8_t rx_head = 0;
  uint8_t rx_count = 0;
};

class Serial : public BusDevice {
 public:
  using IrqFn = std::function<void(bool level)>;
  using OutFn = std::function<void(uint8_t byte)>;

  // Register offsets and bits the guest driver uses.
  static constexpr uint8_t kIerRda = 0x01, kIerThre = 0x02;
  static constexpr uint8_t kIirNone = 0x01, kIirThre = 0x02, kIirRda = 0x04, kIirFifo = 0xc0;
  static constexpr uint8_t kLsrDr = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
  static constexpr uint8_t kLcrDlab = 0x80, kMcrLoop = 0x10;
  static constexpr size_t kFifoSize = 64;

  Serial(IrqFn irq, OutFn out) : irq_(std::move(irq)), out_(std::move(out)) {}

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Queues bytes typed on the console; returns how many fit in the FIFO.
  size_t enqueue_input(std::span<const uint8_t> bytes);
  // Free space in the receive FIFO.
  size_t input_space() const;

  SerialState save() const;
  void restore(const SerialState& s);

 private:
  uint8_t read_reg(uint8_t reg);
  void write_reg(uint8_t reg, uint8_t v);
  void push_rx(uint8_t b);
  uint8_t iir() const;
  uint8_t lsr() const;
  void update_irq();

  mutable std::mutex mu_;
  SerialState s_;
  IrqFn irq_;
  OutFn out_;
};

}  // namespace vessel::vmm
