#include "vmm/devices/serial.h"

namespace vessel::vmm {

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mu_);
  data[0] = offset < 8 ? read_reg(static_cast<uint8_t>(offset)) : 0;
  for (size_t i = 1; i < data.size(); ++i) data[i] = 0;
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty() || offset >= 8) return;
  std::lock_guard lock(mu_);
  write_reg(static_cast<uint8_t>(offset), data[0]);
}

uint8_t Serial::lsr() const {
  uint8_t v = kLsrThre | kLsrTemt;
  if (s_.rx_count > 0) v |= kLsrDr;
  return v;
}

uint8_t Serial::iir() const {
  uint8_t fifo = (s_.fcr & 0x01) ? kIirFifo : 0;
  if ((s_.ier & kIerRda) && s_.rx_count > 0) return fifo | kIirRda;
  if ((s_.ier & kIerThre) && s_.thr_interrupt_pending) return fifo | kIirThre;
  return fifo | kIirNone;
}

void Serial::update_irq() {
  bool level = (iir() & kIirNone) == 0;
  if (level != s_.irq_level) {
    s_.irq_level = level;
    if (irq_) irq_(level);
  }
}

void Serial::push_rx(uint8_t b) {
  if (s_.rx_count >= kFifoSize) return;  // overrun: the byte is lost
  s_.rx[(s_.rx_head + s_.rx_count) % kFifoSize] = b;
  ++s_.rx_count;
}

uint8_t Serial::read_reg(uint8_t reg) {
  bool dlab = s_.lcr & kLcrDlab;
  switch (reg) {
    case 0: {
      if (dlab) return s_.dll;
      if (s_.rx_count == 0) return 0;
      uint8_t b = s_.rx[s_.rx_head];
      s_.rx_head = static_cast<uint8_t>((s_.rx_head + 1) % kFifoSize);
      --s_.rx_count;
      update_irq();
      return b;
    }
    case 1: return dlab ? s_.dlm : s_.ier;
    case 2: {
      uint8_t v = iir();
      // Reading IIR acknowledges a THR-empty interrupt.
      if ((v & 0x0f) == kIirThre) {
        s_.thr_interrupt_pending = false;
        update_irq();
      }
      return v;
    }
    case 3: return s_.lcr;
    case 4: return s_.mcr;
    case 5: return lsr();
    case 6:
      if (s_.mcr & kMcrLoop) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        uint8_t m = s_.mcr;
        return static_cast<uint8_t>(((m & 0x01) << 5) | ((m & 0x02) << 3) | ((m & 0x04) << 4) | ((m & 0x08) << 4));
      }
      return s_.msr;
    case 7: return s_.scr;
  }
  return 0;
}

void Serial::write_reg(uint8_t reg, uint8_t v) {
  bool dlab = s_.lcr & kLcrDlab;
  switch (reg) {
    case 0:
      if (dlab) {
        s_.dll = v;
        return;
      }
      if (s_.mcr & kMcrLoop) {
        push_rx(v);
      } else if (out_) {
        out_(v);
      }
      s_.thr_interrupt_pending = true;  // transmitted at once: THR is empty again
      update_irq();
      return;
    case 1:
      if (dlab) {
        s_.dlm = v;
        return;
      }
      // Enabling the THR-empty interrupt while THR is empty raises it (drivers test this).
      if ((v & kIerThre) && !(s_.ier & kIerThre)) s_.thr_interrupt_pending = true;
      s_.ier = v & 0x0f;
      update_irq();
      return;
    case 2:
      s_.fcr = v & 0xc9;
      if (v & 0x02) {  // clear receive FIFO
        s_.rx_count = 0;
        s_.rx_head = 0;
      }
      update_irq();
      return;
    case 3: s_.lcr = v; return;
    case 4: s_.mcr = v & 0x1f; return;
    case 5: return;  // LSR is read-only
    case 6: return;
    case 7: s_.scr = v; return;
  }
}

size_t Serial::enqueue_input(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (uint8_t b : bytes) {
    if (s_.rx_count >= kFifoSize) break;
    push_rx(b);
    ++n;
  }
  if (n) update_irq();
  return n;
}

size_t Serial::input_space() const {
  std::lock_guard lock(mu_);
  return kFifoSize - s_.rx_count;
}

SerialState Serial::save() const {
  std::lock_guard lock(mu_);
  return s_;
}

void Serial::restore(const SerialState& s) {
  std::lock_guard lock(mu_);
  s_ = s;
  if (s_.rx_count > kFifoSize) s_.rx_count = kFifoSize;
  s_.rx_head %= kFifoSize;
  s_.irq_level = (iir() & kIirNone) != 0;  // the opposite of the new level: forces the line to be driven
  update_irq();
}

}  // namespace vessel::vmm
