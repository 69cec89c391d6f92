#include "vmm/devices/i8042.h"

namespace vessel::vmm {

namespace {
constexpr uint8_t kStatusNotInhibited = 0x10;
}  // namespace

void I8042::put(uint8_t v) {
  s_.out = v;
  s_.status |= kStatusObf;
}

bool I8042::next_key() {
  if ((s_.status & kStatusObf) || s_.keys_count == 0) return false;
  put(s_.keys[0]);
  for (uint8_t i = 1; i < s_.keys_count; ++i) s_.keys[i - 1] = s_.keys[i];
  --s_.keys_count;
  return (s_.control & kCtrKbdInt) != 0;
}

// Under mu_: the pulses of two threads (the API's trigger_ctrl_alt_del and the
// vCPU reading the byte that the first pulse announced) must not overlap. KVM's
// IOAPIC sees an edge only while the pin's IRR bit is clear: a rise that comes
// before the other thread's fall is dropped as coalesced, and the byte it
// announced is never read (seen: SendCtrlAltDel stuck after its first key).
void I8042::pulse_if(bool fire) {
  if (fire && irq_) irq_();
}

bool I8042::pending_interrupt() const {
  return (s_.status & kStatusObf) && (s_.control & kCtrKbdInt);
}

bool I8042::reply(std::initializer_list<uint8_t> bytes) {
  // A reply goes ahead of keys still queued (the guest waits for it).
  size_t n = bytes.size();
  if (s_.keys_count + n > s_.keys.size()) return false;
  for (size_t i = s_.keys_count; i-- > 0;) s_.keys[i + n] = s_.keys[i];
  size_t j = 0;
  for (uint8_t b : bytes) s_.keys[j++] = b;
  s_.keys_count = static_cast<uint8_t>(s_.keys_count + n);
  return next_key();
}

bool I8042::trigger_ctrl_alt_del() {
  bool fire = false;
  {
    std::lock_guard lock(mu_);
    // Set 1 (translated): make codes, break = make | 0x80. Set 2: break = F0 make.
    static constexpr uint8_t kSet1[] = {0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d};
    static constexpr uint8_t kSet2[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14};
    bool set1 = (s_.control & kCtrTranslate) != 0;
    const uint8_t* seq = set1 ? kSet1 : kSet2;
    size_t n = set1 ? sizeof kSet1 : sizeof kSet2;
    if (s_.keys_count + n > s_.keys.size()) return false;
    for (size_t i = 0; i < n; ++i) s_.keys[s_.keys_count++] = seq[i];
    // With a byte still unread in the output buffer, interrupt again: IRQ 1 is a
    // pulse here (a real 8042 holds it while the buffer is full), so a guest that
    // missed one would never read on, and the keys would wait behind it for good.
    fire = next_key() || pending_interrupt();
    pulse_if(fire);
  }
  return true;
}

void I8042::read(uint64_t offset, std::span<uint8_t> d) {
  if (d.empty()) return;
  bool fire = false;
  {
    std::lock_guard lock(mu_);
    uint8_t v = 0;
    if (offset == 0) {
      v = s_.out;
      s_.status &= static_cast<uint8_t>(~kStatusObf);
      fire = next_key();
    } else if (offset == 4) {
      // Bit 4 is the keyboard lock switch, an input and not state: always open (as
      // QEMU's pckbd); clear, Linux warns "i8042: Warning: Keylock active".
      v = s_.status | kStatusNotInhibited;
    }
    d[0] = v;
    for (size_t i = 1; i < d.size(); ++i) d[i] = 0;
    pulse_if(fire);
  }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> d) {
  if (d.empty()) return;
  bool reset = false, fire = false;
  {
    std::lock_guard lock(mu_);
    if (offset == 4) {
      s_.status |= kStatusCmd;
      if (d[0] == kCmdReset) reset = true;
      else command(d[0]);
    } else if (offset == 0) {
      s_.status &= static_cast<uint8_t>(~kStatusCmd);
      if (s_.pending_cmd == kCmdWriteOutPort && !(d[0] & 0x01)) reset = true;  // bit 0 low: CPU reset
      else fire = data(d[0]);
      s_.pending_cmd = 0;
    }
    pulse_if(fire);
  }
  if (reset && on_reset_) on_reset_();
}

void I8042::command(uint8_t cmd) {
  switch (cmd) {
    case kCmdReadCtr: put(s_.control); break;
    case kCmdSelfTest: put(0x55); break;
    case kCmdPortTest: put(0x00); break;
    case kCmdWriteCtr:
    case kCmdWriteOutPort:
    case kCmdWriteAux: s_.pending_cmd = cmd; break;
    default: break;  // enable/disable ports and the rest: accepted, no effect
  }
}

bool I8042::data(uint8_t v) {
  switch (s_.pending_cmd) {
    case kCmdWriteCtr: {
      // Enabling the keyboard interrupt with a byte waiting raises it, as the
      // level of a real 8042's IRQ 1 would.
      bool was = s_.control & kCtrKbdInt;
      s_.control = v;
      return !was && pending_interrupt();
    }
    case kCmdWriteAux: return false;  // no mouse
    default: break;
  }
  // A byte for the keyboard: every command (and parameter byte) is ACKed, with
  // IRQ 1 as a real keyboard raises it (Linux's atkbd waits for the ACK's
  // interrupt). GET ID answers an MF2 keyboard (0xab 0x83, 0x41 translated);
  // RESET answers the self-test passed (0xaa).
  if (v == kKbdGetId) return reply({kKbdAck, 0xab, (s_.control & kCtrTranslate) ? uint8_t{0x41} : uint8_t{0x83}});
  if (v == kKbdReset) return reply({kKbdAck, 0xaa});
  return reply({kKbdAck});
}

I8042State I8042::save() const {
  std::lock_guard lock(mu_);
  return s_;
}

void I8042::restore(const I8042State& s) {
  std::lock_guard lock(mu_);
  s_ = s;
}

}  // namespace vessel::vmm
