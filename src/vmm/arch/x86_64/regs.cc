#include "vmm/arch/x86_64/regs.h"

#include <cstdio>

#include "vmm/arch/x86_64/layout.h"

namespace vessel::vmm::x86 {

namespace {
constexpr uint64_t kCr0Pe = 1, kCr0Et = 1 << 4, kCr0Pg = 1ULL << 31;
constexpr uint64_t kCr4Pae = 1 << 5;
constexpr uint64_t kEferLme = 1 << 8, kEferLma = 1 << 10;
constexpr uint64_t kPtePresent = 1, kPteRw = 2, kPtePs = 1 << 7;
}  // namespace

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t(base) & 0xff000000ULL) << 32) | ((uint64_t(base) & 0x00ffffffULL) << 16) |
         (uint64_t(limit) & 0xffffULL) | ((uint64_t(limit) & 0xf0000ULL) << 32) | (uint64_t(flags & 0xf0ff) << 40);
}

kvm_segment segment_from_gdt(uint64_t e, uint16_t selector) {
  kvm_segment s{};
  s.base = static_cast<uint32_t>(((e >> 16) & 0xffffff) | (((e >> 56) & 0xff) << 24));
  uint32_t limit = static_cast<uint32_t>((e & 0xffff) | (((e >> 48) & 0xf) << 16));
  s.g = (e >> 55) & 1;
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = selector;
  s.type = (e >> 40) & 0xf;
  s.s = (e >> 44) & 1;
  s.dpl = (e >> 45) & 3;
  s.present = (e >> 47) & 1;
  s.avl = (e >> 52) & 1;
  s.l = (e >> 53) & 1;
  s.db = (e >> 54) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

std::array<uint64_t, 5> boot_gdt(bool code64) {
  return {0, 0, gdt_entry(code64 ? 0xa09b : 0xc09b, 0, 0xfffff), gdt_entry(0xc093, 0, 0xfffff),
          gdt_entry(0x808b, 0, 0xfffff)};
}

Status write_identity_page_tables(GuestMemory& mem) {
  constexpr uint64_t kPdPages = kIdentityMappedBytes / kGiB;
  TRYC(mem.fill(kPml4Addr, 0, 4096 * (2 + kPdPages)), "zero boot page tables");
  TRY(mem.write_obj<uint64_t>(kPml4Addr, kPdptAddr | kPtePresent | kPteRw));
  for (uint64_t i = 0; i < kPdPages; ++i) {
    TRY(mem.write_obj<uint64_t>(kPdptAddr + i * 8, (kPdAddr + i * 4096) | kPtePresent | kPteRw));
    for (uint64_t j = 0; j < 512; ++j) {
      uint64_t addr = (i * 512 + j) << 21;
      TRY(mem.write_obj<uint64_t>(kPdAddr + i * 4096 + j * 8, addr | kPtePresent | kPteRw | kPtePs));
    }
  }
  return ok();
}

namespace {
void set_flat_segments(kvm_sregs& s, bool code64) {
  auto gdt = boot_gdt(code64);
  s.cs = segment_from_gdt(gdt[2], kBootCs);
  s.ds = s.es = s.fs = s.gs = s.ss = segment_from_gdt(gdt[3], kBootDs);
  s.tr = segment_from_gdt(gdt[4], kBootTss);
  s.gdt.base = kGdtAddr;
  s.gdt.limit = sizeof(uint64_t) * gdt.size() - 1;
  s.idt.base = kIdtAddr;
  s.idt.limit = 0;
}
}  // namespace

kvm_sregs real_mode_sregs(kvm_sregs s) {
  for (kvm_segment* seg : {&s.cs, &s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    seg->base = 0;
    seg->selector = 0;
    seg->limit = 0xffff;
  }
  s.cr0 &= ~(kCr0Pe | kCr0Pg);
  s.efer = 0;
  return s;
}

kvm_sregs protected32_sregs(kvm_sregs s) {
  set_flat_segments(s, false);
  s.cr0 = kCr0Pe | kCr0Et;
  s.cr3 = 0;
  s.cr4 = 0;
  s.efer = 0;
  return s;
}

kvm_sregs long_mode_sregs(kvm_sregs s) {
  set_flat_segments(s, true);
  s.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
  s.cr3 = kPml4Addr;
  s.cr4 = kCr4Pae;
  s.efer = kEferLme | kEferLma;
  return s;
}

kvm_regs entry_regs(const BootEntry& e) {
  kvm_regs r{};
  r.rflags = 0x2;  // reserved bit; interrupts off
  r.rip = e.ip;
  r.rsp = r.rbp = e.sp ? e.sp : kBootStackTop;
  if (e.mode == EntryMode::kLong64) r.rsi = e.arg;
  if (e.mode == EntryMode::kProtected32) r.rbx = e.arg;
  return r;
}

kvm_fpu default_fpu() {
  kvm_fpu f{};
  f.fcw = 0x37f;
  f.mxcsr = 0x1f80;
  return f;
}

Status apply_entry(GuestMemory& mem, VcpuFd& vcpu, const BootEntry& e) {
  kvm_sregs s = TRY(vcpu.get_sregs());
  switch (e.mode) {
    case EntryMode::kReal16: s = real_mode_sregs(s); break;
    case EntryMode::kProtected32:
    case EntryMode::kLong64: {
      bool code64 = e.mode == EntryMode::kLong64;
      auto gdt = boot_gdt(code64);
      TRYC(mem.write(kGdtAddr, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(gdt.data()), sizeof gdt)),
           "write boot GDT");
      TRYC(mem.write_obj<uint64_t>(kIdtAddr, 0), "write boot IDT");
      if (code64) TRYC(write_identity_page_tables(mem), "write boot page tables");
      s = code64 ? long_mode_sregs(s) : protected32_sregs(s);
      break;
    }
  }
  TRY(vcpu.set_sregs(s));
  TRY(vcpu.set_regs(entry_regs(e)));
  return ok();
}

std::string format_regs(const kvm_regs& r, const kvm_sregs& s) {
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "rip=0x%llx rsp=0x%llx rflags=0x%llx rax=0x%llx rbx=0x%llx rcx=0x%llx rdx=0x%llx rsi=0x%llx "
                "rdi=0x%llx cr0=0x%llx cr2=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx cs=0x%x(base 0x%llx)",
                (unsigned long long)r.rip, (unsigned long long)r.rsp, (unsigned long long)r.rflags,
                (unsigned long long)r.rax, (unsigned long long)r.rbx, (unsigned long long)r.rcx,
                (unsigned long long)r.rdx, (unsigned long long)r.rsi, (unsigned long long)r.rdi,
                (unsigned long long)s.cr0, (unsigned long long)s.cr2, (unsigned long long)s.cr3,
                (unsigned long long)s.cr4, (unsigned long long)s.efer, s.cs.selector, (unsigned long long)s.cs.base);
  return buf;
}

}  // namespace vessel::vmm::x86
