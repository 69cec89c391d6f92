// Tiny PVH ELF "kernels" for the VMM CLI and API tests, written in C++ so
// that the tests also run where there is no python3 (the VM harness's L1,
// for hosts without a usable /dev/kvm). The same guests as
// make_tiny_pvh.py (which the benchmarks use): entered in 32-bit protected
// mode, print a message on COM1, then
//   poweroff    write 0x34 to the ACPI sleep control port 0x600
//   reset       write 0xFE to the i8042 command port
//   spin        loop for ever
//   fault       ud2 with no IDT: a triple fault
//   count       print the digits 0-9 over and over, one every few ms
//   ctrlaltdel  poll the i8042 until a Del make code (set 1: 0x53), power off
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace vessel::vmm::testing {

// The vessel binary under test: $VESSEL_TEST_BINARY when set (the harness's
// L1 runs these tests against its copy), else the one of this build.
inline const char* vessel_binary() {
  const char* e = std::getenv("VESSEL_TEST_BINARY");
  return e && *e ? e : VESSEL_BINARY;
}

namespace tiny_detail {
inline void put(std::vector<uint8_t>& v, uint64_t x, int bytes) {
  for (int i = 0; i < bytes; ++i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}
inline void add(std::vector<uint8_t>& v, std::initializer_list<uint8_t> b) { v.insert(v.end(), b); }
}  // namespace tiny_detail

inline std::vector<uint8_t> pvh_elf(const std::vector<uint8_t>& c);

inline std::vector<uint8_t> tiny_pvh_elf(const std::string& mode, const std::string& message) {
  using namespace tiny_detail;
  std::vector<uint8_t> c{0x66, 0xba, 0xf8, 0x03};  // mov dx, 0x3f8
  for (unsigned char ch : message) add(c, {0xb0, ch, 0xee});  // mov al, ch; out dx, al
  if (mode == "poweroff") {
    add(c, {0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee});
  } else if (mode == "reset") {
    add(c, {0x66, 0xba, 0x64, 0x00, 0xb0, 0xfe, 0xee});
  } else if (mode == "spin") {
    add(c, {0xeb, 0xfe});
  } else if (mode == "fault") {
    add(c, {0x0f, 0x0b});
  } else if (mode == "count") {
    add(c, {0x31, 0xdb});  // xor ebx, ebx
    std::vector<uint8_t> loop{0x88, 0xd8, 0x04, 0x30, 0xee,              // mov al, bl; add al, '0'; out dx, al
                              0xfe, 0xc3, 0x80, 0xfb, 0x0a, 0x72, 0x02, 0x31, 0xdb,  // inc bl; cmp bl, 10; jb +2; xor ebx, ebx
                              0xb9};
    put(loop, 20'000'000, 4);  // mov ecx, N
    add(loop, {0xe2, 0xfe});   // loop $
    uint8_t back = static_cast<uint8_t>((256 - (loop.size() + 2)) & 0xff);
    add(loop, {0xeb, back});  // jmp to the top
    c.insert(c.end(), loop.begin(), loop.end());
  } else if (mode == "ctrlaltdel") {
    add(c, {0xe4, 0x64, 0xa8, 0x01, 0x74, 0xfa, 0xe4, 0x60, 0x3c, 0x53, 0x75, 0xf4});
    add(c, {0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee});
  }
  add(c, {0xfa, 0xf4, 0xeb, 0xfd});  // cli; hlt; jmp hlt
  return pvh_elf(c);
}

// An ELF with one PT_LOAD at 1 MiB holding `c` at 1 MiB + 0x100 (the PVH
// entry, 32-bit protected mode, paging off) and the Xen PVH note.
inline std::vector<uint8_t> pvh_elf(const std::vector<uint8_t>& c) {
  using namespace tiny_detail;
  constexpr uint64_t kLoad = 0x100000, kCodeOff = 0x100;
  std::vector<uint8_t> note;
  put(note, 4, 4);
  put(note, 8, 4);
  put(note, 18, 4);  // XEN_ELFNOTE_PHYS32_ENTRY
  add(note, {'X', 'e', 'n', 0});
  put(note, kLoad + kCodeOff, 8);
  constexpr uint64_t kEhdr = 64, kPhdr = 56, kNoteOff = kEhdr + 2 * kPhdr;
  uint64_t size = kCodeOff + c.size();
  std::vector<uint8_t> out{0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  put(out, 2, 2);   // ET_EXEC
  put(out, 62, 2);  // EM_X86_64
  put(out, 1, 4);
  put(out, kLoad + kCodeOff, 8);  // e_entry
  put(out, kEhdr, 8);             // e_phoff
  put(out, 0, 8);                 // e_shoff
  put(out, 0, 4);
  put(out, kEhdr, 2);
  put(out, kPhdr, 2);
  put(out, 2, 2);  // e_phnum
  put(out, 64, 2);
  put(out, 0, 2);
  put(out, 0, 2);
  // PT_LOAD, RWX, the whole file at kLoad.
  put(out, 1, 4);
  put(out, 7, 4);
  for (uint64_t v : {uint64_t{0}, kLoad, kLoad, size, size, uint64_t{0x1000}}) put(out, v, 8);
  // PT_NOTE.
  put(out, 4, 4);
  put(out, 4, 4);
  for (uint64_t v : {kNoteOff, kLoad + kNoteOff, kLoad + kNoteOff, uint64_t{note.size()}, uint64_t{note.size()}, uint64_t{4}})
    put(out, v, 8);
  out.insert(out.end(), note.begin(), note.end());
  out.resize(kCodeOff, 0);
  out.insert(out.end(), c.begin(), c.end());
  return out;
}

// Writes the guest to `path`; false when the file cannot be written.
inline bool write_tiny_pvh(const std::string& path, const std::string& mode, const std::string& message) {
  auto bytes = tiny_pvh_elf(mode, message);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

}  // namespace vessel::vmm::testing
