// ELF loading and the PVH boot path.
#include "vmm/arch/x86_64/pvh.h"

#include <elf.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/strings.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/hex.h"

namespace vessel::vmm::x86 {

std::optional<uint64_t> find_pvh_entry(std::span<const uint8_t> notes) {
  size_t off = 0;
  auto align4 = [](size_t v) { return (v + 3) & ~size_t(3); };
  while (off + sizeof(Elf64_Nhdr) <= notes.size()) {
    Elf64_Nhdr h;
    std::memcpy(&h, notes.data() + off, sizeof h);
    size_t name_off = off + sizeof h;
    size_t desc_off = name_off + align4(h.n_namesz);
    size_t next = desc_off + align4(h.n_descsz);
    if (h.n_namesz > notes.size() || h.n_descsz > notes.size() || next > notes.size()) return std::nullopt;
    if (h.n_type == kXenElfnotePhys32Entry && h.n_namesz == 4 &&
        std::memcmp(notes.data() + name_off, "Xen", 4) == 0) {
      if (h.n_descsz == 4) {
        uint32_t v;
        std::memcpy(&v, notes.data() + desc_off, 4);
        return v;
      }
      if (h.n_descsz == 8) {
        uint64_t v;
        std::memcpy(&v, notes.data() + desc_off, 8);
        return v;
      }
      return std::nullopt;
    }
    off = next;
  }
  return std::nullopt;
}

Result<BootEntry> load_pvh_elf(GuestMemory& mem, const BootSources& src) {
  Elf64_Ehdr eh;
  TRYC(pread_exact(src.kernel_fd, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&eh), sizeof eh)), "read ELF header");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64)
    return Error::invalid("not a 64-bit x86 ELF file");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64)
    return Error::invalid("bad ELF program header table");
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  TRYC(pread_exact(src.kernel_fd, eh.e_phoff,
                   std::span<uint8_t>(reinterpret_cast<uint8_t*>(ph.data()), ph.size() * sizeof(Elf64_Phdr))),
       "read ELF program headers");

  std::optional<uint64_t> entry;
  uint64_t kernel_end = 0;
  for (const auto& p : ph) {
    if (p.p_type == PT_NOTE && !entry && p.p_filesz <= (1 << 20)) {
      std::vector<uint8_t> notes(p.p_filesz);
      TRYC(pread_exact(src.kernel_fd, p.p_offset, notes), "read ELF notes");
      entry = find_pvh_entry(notes);
    }
    if (p.p_type != PT_LOAD) continue;
    if (p.p_filesz > p.p_memsz || p.p_offset + p.p_filesz > src.kernel_size || p.p_offset + p.p_filesz < p.p_offset)
      return Error::invalid(cat("ELF segment at ", hex(p.p_paddr), " lies outside the file"));
    if (!mem.contains(p.p_paddr, p.p_memsz))
      return Error::invalid(cat("ELF segment ", hex(p.p_paddr), "+", hex(p.p_memsz), " does not fit in guest memory of ",
                                mem.size() >> 20, " MiB"));
    if (p.p_paddr < kHighMemStart) return Error::invalid(cat("ELF segment at ", hex(p.p_paddr), " is below 1 MiB"));
    TRYC(pread_to_guest(mem, src.kernel_fd, p.p_offset, p.p_paddr, p.p_filesz), "load ELF segment");
    TRY(mem.fill(p.p_paddr + p.p_filesz, 0, p.p_memsz - p.p_filesz));
    kernel_end = std::max(kernel_end, p.p_paddr + p.p_memsz);
  }
  if (!entry) return Error::invalid("the ELF file has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
  if (kernel_end == 0) return Error::invalid("the ELF file has no loadable segment");

  if (src.cmdline.size() + 1 > kCmdlineMax) return Error::invalid("command line too long");
  TRY(mem.fill(kCmdlineAddr, 0, src.cmdline.size() + 1));
  TRY(mem.write(kCmdlineAddr, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(src.cmdline.data()),
                                                       src.cmdline.size())));

  HvmStartInfo si{};
  si.magic = kPvhMagic;
  si.version = 1;
  si.cmdline_paddr = kCmdlineAddr;
  si.rsdp_paddr = src.rsdp_addr;
  if (src.initrd_fd >= 0) {
    uint64_t at = TRYC(place_initrd(src.initrd_size, kernel_end, mem.low_end(), 0xffffffffULL), "initrd");
    TRYC(pread_to_guest(mem, src.initrd_fd, 0, at, src.initrd_size), "load initrd");
    HvmModlistEntry mod{at, src.initrd_size, 0, 0};
    TRY(mem.write_obj(kPvhModlistAddr, mod));
    si.nr_modules = 1;
    si.modlist_paddr = kPvhModlistAddr;
  }
  auto e820 = build_e820(mem);
  for (size_t i = 0; i < e820.size(); ++i) {
    HvmMemmapEntry m{e820[i].addr, e820[i].size, e820[i].type, 0};
    TRY(mem.write_obj(kPvhMemmapAddr + i * sizeof m, m));
  }
  si.memmap_paddr = kPvhMemmapAddr;
  si.memmap_entries = static_cast<uint32_t>(e820.size());
  TRY(mem.write_obj(kPvhStartInfoAddr, si));

  BootEntry e;
  e.mode = EntryMode::kProtected32;
  e.ip = *entry;
  e.arg = kPvhStartInfoAddr;
  return e;
}

}  // namespace vessel::vmm::x86
