// Helpers for the tiny machine-code guests of the VMM integration tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "vmm/machine.h"

namespace vessel::vmm::testing {

// Skips the test (counted as skipped) when KVM cannot be used here.
#define VESSEL_REQUIRE_KVM()                                                   \
  do {                                                                         \
    if (::access("/dev/kvm", R_OK | W_OK) != 0)                                \
      GTEST_SKIP() << "needs read/write access to /dev/kvm (root + KVM)";      \
  } while (0)

// Collects COM1 output across threads.
struct SerialCapture {
  std::mutex mu;
  std::string text;
  Serial::OutFn fn() {
    return [this](uint8_t b) {
      std::lock_guard lock(mu);
      text.push_back(static_cast<char>(b));
    };
  }
  std::string get() {
    std::lock_guard lock(mu);
    return text;
  }
};

// x86 encodings used by the guests (the same bytes in 16- and 64-bit mode
// unless noted).
struct Code {
  std::vector<uint8_t> bytes;
  bool long_mode = false;
  Code& raw(std::initializer_list<uint8_t> b) {
    bytes.insert(bytes.end(), b);
    return *this;
  }
  // mov dx, port  (16-bit mode: BA iw; 64-bit mode needs the 66 prefix)
  Code& mov_dx(uint16_t port) {
    if (long_mode) bytes.push_back(0x66);
    return raw({0xba, static_cast<uint8_t>(port), static_cast<uint8_t>(port >> 8)});
  }
  Code& mov_al(uint8_t v) { return raw({0xb0, v}); }
  Code& out_dx_al() { return raw({0xee}); }
  Code& out(uint16_t port, uint8_t v) { return mov_dx(port).mov_al(v).out_dx_al(); }
  Code& print(const std::string& s) {
    mov_dx(0x3f8);
    for (char c : s) mov_al(static_cast<uint8_t>(c)).out_dx_al();
    return *this;
  }
  // 64-bit only: mov rax, imm64; mov byte [rax], v
  Code& mmio_write8(uint64_t addr, uint8_t v) {
    raw({0x48, 0xb8});
    for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<uint8_t>(addr >> (8 * i)));
    return raw({0xc6, 0x00, v});
  }
  Code& poweroff() { return out(0x600, 0x34); }
  Code& hlt() { return raw({0xf4}); }
  Code& spin() { return raw({0xeb, 0xfe}); }
};

// How many guests the VM harness lets a test lose to L1's nested SVM, which
// now and then damages a running guest's registers (tests/vmharness/README.md):
// VESSEL_TEST_SPURIOUS_SHUTDOWNS, which the harness's tier-1 payload sets; 0
// elsewhere.
inline int spurious_shutdowns_allowed() {
  const char* v = std::getenv("VESSEL_TEST_SPURIOUS_SHUTDOWNS");
  return v ? std::atoi(v) : 0;
}

// Whether `text` (an error, a VM's stop detail or state) shows that damage: a
// state capture refusing the registers (snapshot::check_sregs), a guest ended
// by a triple fault, or by an emulation failure at a RIP its code never
// reaches (a tier-1 guest runs only moves, adds, port I/O and HLT). Seen: the
// 32-bit migration guest (cr0=0x11) stopped on KVM_EXIT_INTERNAL_ERROR
// suberror 1 at rip=0xb22c7e56, the low half of an address in L1's own
// kernel text (0xffffffffb2...): L1's host RIP in the guest's save area.
inline bool shows_l1_damage(const std::string& text) {
  return text.find("KVM_GET_SREGS gave a damaged CPU state") != std::string::npos ||
         text.find("triple fault") != std::string::npos ||
         text.find("KVM_EXIT_INTERNAL_ERROR, suberror (0x1)") != std::string::npos;
}

inline constexpr uint64_t kCodeAddr = 0x100000;

// A machine running `code` at 1 MiB in real or long mode.
inline Result<std::unique_ptr<Machine>> make_guest(const Code& code, MachineConfig cfg) {
  auto m = TRY(Machine::create(cfg));
  TRY(m->memory().write(kCodeAddr, code.bytes));
  x86::BootEntry e;
  e.mode = code.long_mode ? x86::EntryMode::kLong64 : x86::EntryMode::kReal16;
  e.ip = kCodeAddr;
  if (!code.long_mode) {
    // Real mode reaches only the first MiB: copy the code to 0x1000 too.
    TRY(m->memory().write(0x1000, code.bytes));
    e.ip = 0x1000;
  }
  m->set_entry(e);
  return m;
}

}  // namespace vessel::vmm::testing
