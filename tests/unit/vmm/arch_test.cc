// x86 boot structures without KVM: e820, zero page, page tables, GDT,
// initrd placement, PVH note, CPUID, ACPI tables and AML.
#include <gtest/gtest.h>

#include <algorithm>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "vmm/arch/x86_64/acpi.h"
#include "vmm/arch/x86_64/aml.h"
#include "vmm/arch/x86_64/boot.h"
#include "vmm/arch/x86_64/cpuid.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/pvh.h"
#include "vmm/arch/x86_64/regs.h"
#include "vmm/arch/x86_64/zero_page.h"

namespace vessel::vmm::x86 {
namespace {

GuestMemory mem_of(uint64_t size) {
  auto m = GuestMemory::create(size, kMmioHoleStart, kMmioHoleEnd);
  EXPECT_TRUE(m);
  return std::move(*m);
}

TEST(GuestMemory, SplitsAroundTheHoleAndChecksBounds) {
  GuestMemory small = mem_of(64 * kMiB);
  ASSERT_EQ(small.regions().size(), 1u);
  EXPECT_TRUE(small.contains(64 * kMiB - 8, 8));
  EXPECT_FALSE(small.contains(64 * kMiB - 4, 8));
  EXPECT_FALSE(small.contains(~0ULL - 2, 8));
  uint8_t b[4] = {1, 2, 3, 4};
  EXPECT_FALSE(small.write(64 * kMiB, b));
  GuestMemory big = mem_of(5 * kGiB);
  ASSERT_EQ(big.regions().size(), 2u);
  EXPECT_EQ(big.low_end(), 3 * kGiB);
  EXPECT_EQ(big.regions()[1].guest_addr, 4 * kGiB);
  EXPECT_EQ(big.regions()[1].size, 2 * kGiB);
  EXPECT_FALSE(big.contains(3 * kGiB, 1));  // the hole
  EXPECT_FALSE(big.contains(3 * kGiB - 2, 4));  // straddles into the hole
  EXPECT_FALSE(GuestMemory::create(12345, kMmioHoleStart, kMmioHoleEnd));
}

TEST(E820, MapsLowRamAcpiAndHighRam) {
  GuestMemory big = mem_of(4 * kGiB);
  auto map = build_e820(big);
  ASSERT_EQ(map.size(), 4u);
  EXPECT_EQ(map[0].addr, 0u);
  EXPECT_EQ(map[0].size, kEbdaStart);
  EXPECT_EQ(map[0].type, kE820Ram);
  EXPECT_EQ(map[1].addr, kAcpiStart);
  EXPECT_EQ(map[1].type, kE820Reserved);
  EXPECT_EQ(map[2].addr, kHighMemStart);
  EXPECT_EQ(map[2].addr + map[2].size, 3 * kGiB);
  EXPECT_EQ(map[3].addr, 4 * kGiB);
  EXPECT_EQ(map[3].size, 1 * kGiB);
}

TEST(ZeroPage, CopiesHeaderAndFillsLoaderFields) {
  uint8_t header[0x70] = {};
  header[0] = 27;                                  // setup_sects at 0x1f1
  std::memcpy(header + (0x202 - 0x1f1), "HdrS", 4);
  ZeroPageParams p;
  p.setup_header = header;
  p.cmdline_addr = kCmdlineAddr;
  p.initrd_addr = 0x7f00000;
  p.initrd_size = 0x123456;
  p.rsdp_addr = kAcpiStart;
  p.e820 = {{0, 0x9fc00, kE820Ram}, {0x100000, 0x7f00000, kE820Ram}};
  ZeroPage z = build_zero_page(p);
  std::span<const uint8_t> s(z);
  EXPECT_EQ(zp_get<uint8_t>(s, zp::kSetupHeader), 27);
  EXPECT_EQ(std::memcmp(z.data() + zp::kHeaderMagic, "HdrS", 4), 0);
  EXPECT_EQ(zp_get<uint8_t>(s, zp::kTypeOfLoader), 0xff);
  EXPECT_EQ(zp_get<uint32_t>(s, zp::kCmdLinePtr), kCmdlineAddr);
  EXPECT_EQ(zp_get<uint32_t>(s, zp::kRamdiskImage), 0x7f00000u);
  EXPECT_EQ(zp_get<uint32_t>(s, zp::kRamdiskSize), 0x123456u);
  EXPECT_EQ(zp_get<uint64_t>(s, zp::kAcpiRsdpAddr), kAcpiStart);
  EXPECT_EQ(zp_get<uint8_t>(s, zp::kE820Entries), 2);
  EXPECT_EQ(zp_get<uint64_t>(s, zp::kE820Table + 20), 0x100000u);
  EXPECT_EQ(zp_get<uint32_t>(s, zp::kE820Table + 20 + 16), kE820Ram);
}

TEST(Initrd, PlacedHighPageAlignedAndChecked) {
  auto at = place_initrd(0x1800, 0x2000000, 0x8000000, 0x7fffffff);
  ASSERT_TRUE(at);
  EXPECT_EQ(*at, 0x8000000u - 0x2000);
  EXPECT_EQ(*at % 4096, 0u);
  at = place_initrd(0x1000, 0x2000000, 0x80000000, 0x37ffffff);  // initrd_addr_max wins
  ASSERT_TRUE(at);
  EXPECT_EQ(*at, 0x38000000u - 0x1000);
  EXPECT_FALSE(place_initrd(0x7000000, 0x2000000, 0x8000000, 0x7fffffff));  // overlaps the kernel
}

TEST(BzImage, RejectsOldProtocolAndTooSmallMemory) {
  GuestMemory m = mem_of(16 * kMiB);
  std::vector<uint8_t> img(0x4000, 0);
  img[0x1f1] = 4;
  std::memcpy(img.data() + 0x202, "HdrS", 4);
  auto put16 = [&](size_t o, uint16_t v) { std::memcpy(img.data() + o, &v, 2); };
  auto put32 = [&](size_t o, uint32_t v) { std::memcpy(img.data() + o, &v, 4); };
  put16(0x206, 0x0200);
  int fd = memfd_create("img", 0);
  ASSERT_EQ(write(fd, img.data(), img.size()), static_cast<ssize_t>(img.size()));
  BootSources src;
  src.kernel_fd = fd;
  src.kernel_size = img.size();
  auto e = load_kernel(m, src);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("too old"), std::string::npos) << e.error().message();
  put16(0x206, 0x020f);
  put16(0x236, 1);       // XLF_KERNEL_64
  img[0x211] = 1;        // LOADED_HIGH
  put32(0x260, 64 << 20);  // init_size larger than RAM
  put32(0x238, 2048);
  ASSERT_EQ(pwrite(fd, img.data(), img.size(), 0), static_cast<ssize_t>(img.size()));
  e = load_kernel(m, src);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("too small"), std::string::npos) << e.error().message();
  put32(0x260, 1 << 20);
  ASSERT_EQ(pwrite(fd, img.data(), img.size(), 0), static_cast<ssize_t>(img.size()));
  src.cmdline = "console=ttyS0";
  e = load_kernel(m, src);
  ASSERT_TRUE(e) << e.error().message();
  EXPECT_EQ(e->mode, EntryMode::kLong64);
  EXPECT_EQ(e->ip, kHighMemStart + 0x200);
  EXPECT_EQ(e->arg, kZeroPageAddr);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(m.host_ptr(kCmdlineAddr, 14))), "console=ttyS0");
  close(fd);
}

TEST(Pvh, FindsPhys32EntryNote) {
  std::vector<uint8_t> notes;
  auto add = [&](const char* name, uint32_t type, uint64_t desc, uint32_t descsz) {
    uint32_t namesz = static_cast<uint32_t>(std::strlen(name) + 1);
    uint32_t h[3] = {namesz, descsz, type};
    notes.insert(notes.end(), reinterpret_cast<uint8_t*>(h), reinterpret_cast<uint8_t*>(h) + 12);
    notes.insert(notes.end(), name, name + namesz);
    notes.resize((notes.size() + 3) & ~size_t(3));
    notes.insert(notes.end(), reinterpret_cast<uint8_t*>(&desc), reinterpret_cast<uint8_t*>(&desc) + descsz);
    notes.resize((notes.size() + 3) & ~size_t(3));
  };
  add("GNU", 3, 0x1234, 8);
  add("Xen", 17, 0x99, 4);
  EXPECT_FALSE(find_pvh_entry(notes));
  add("Xen", kXenElfnotePhys32Entry, 0x1000abc, 8);
  EXPECT_EQ(find_pvh_entry(notes), 0x1000abcu);
  notes.resize(notes.size() - 3);  // truncated: no crash, no entry
  EXPECT_FALSE(find_pvh_entry(notes));
}

TEST(Regs, GdtEntriesAndPageTables) {
  EXPECT_EQ(gdt_entry(0xa09b, 0, 0xfffff), 0x00af9b000000ffffULL);
  EXPECT_EQ(gdt_entry(0xc093, 0, 0xfffff), 0x00cf93000000ffffULL);
  kvm_segment cs = segment_from_gdt(boot_gdt(true)[2], kBootCs);
  EXPECT_EQ(cs.l, 1);
  EXPECT_EQ(cs.limit, 0xffffffffu);
  EXPECT_EQ(cs.type, 0xb);
  kvm_segment cs32 = segment_from_gdt(boot_gdt(false)[2], kBootCs);
  EXPECT_EQ(cs32.l, 0);
  EXPECT_EQ(cs32.db, 1);
  GuestMemory m = mem_of(64 * kMiB);
  ASSERT_TRUE(write_identity_page_tables(m));
  EXPECT_EQ(*m.read_obj<uint64_t>(kPml4Addr), kPdptAddr | 3);
  EXPECT_EQ(*m.read_obj<uint64_t>(kPdptAddr + 8), (kPdAddr + 4096) | 3);
  EXPECT_EQ(*m.read_obj<uint64_t>(kPdAddr + 8), (2 * kMiB) | 0x83);
  EXPECT_EQ(*m.read_obj<uint64_t>(kPdAddr + 3 * 4096 + 511 * 8), (4 * kGiB - 2 * kMiB) | 0x83);
  kvm_sregs s = long_mode_sregs(kvm_sregs{});
  EXPECT_EQ(s.cr3, kPml4Addr);
  EXPECT_EQ(s.efer & 0x500, 0x500u);
  EXPECT_EQ(s.cs.selector, kBootCs);
  EXPECT_EQ(s.ds.selector, kBootDs);
}

TEST(Cpuid, TopologyApicIdAndHypervisorLeaf) {
  std::vector<kvm_cpuid_entry2> in(3);
  in[0].function = 1;
  in[1].function = 0xb;
  in[1].index = 1;
  in[2].function = 0x40000000;
  auto out = normalize_cpuid(in, 2, 4);
  EXPECT_EQ(out[0].ebx >> 24, 2u);
  EXPECT_EQ((out[0].ebx >> 16) & 0xff, 4u);
  EXPECT_TRUE(out[0].ecx & (1u << 31));
  EXPECT_EQ(out[1].ebx, 4u);
  EXPECT_EQ(out[1].edx, 2u);
  EXPECT_EQ(out[1].eax, 2u);
  char sig[13] = {};
  std::memcpy(sig, &out[2].ebx, 4);
  std::memcpy(sig + 4, &out[2].ecx, 4);
  std::memcpy(sig + 8, &out[2].edx, 4);
  EXPECT_STREQ(sig, "KVMKVMKVM");
  // Many vCPUs: every field keeps within its width (leaf 4's core count has 6 bits).
  std::vector<kvm_cpuid_entry2> big(2);
  big[0].function = 1;
  big[1].function = 4;
  big[1].eax = 3 << 5;  // an L3 cache
  auto many = normalize_cpuid(big, 253, 254);
  EXPECT_EQ(many[0].ebx >> 24, 253u);
  EXPECT_EQ((many[0].ebx >> 16) & 0xff, 254u);
  EXPECT_EQ(many[1].eax >> 26, 63u);
  EXPECT_EQ((many[1].eax >> 14) & 0xfff, 253u);
  auto added = normalize_cpuid({}, 0, 1);
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0].function, 0x40000000u);
}

TEST(Cpuid, ExtrasAddTheTscDeadlineTimerAndTheBrandString) {
  std::vector<kvm_cpuid_entry2> in(3);
  in[0].function = 1;
  in[1].function = 0x80000000;
  in[1].eax = 0x80000008;
  in[2].function = 0x80000003;  // KVM's leaf, empty: replaced; 0x80000002 and 4 are added
  const char name[49] = "Vessel Test CPU @ 1.00GHz, forty-eight bytes ok";
  CpuidExtras extras;
  extras.tsc_deadline = true;
  std::memcpy(extras.brand.data(), name, 48);
  auto out = normalize_cpuid(in, 0, 1, extras);
  EXPECT_TRUE(out[0].ecx & (1u << 24));
  char got[49] = {};
  for (uint32_t fn = 0x80000002; fn <= 0x80000004; ++fn) {
    auto it = std::find_if(out.begin(), out.end(), [fn](const kvm_cpuid_entry2& e) { return e.function == fn; });
    ASSERT_NE(it, out.end()) << std::hex << fn;
    uint32_t r[4] = {it->eax, it->ebx, it->ecx, it->edx};
    std::memcpy(got + (fn - 0x80000002) * 16, r, 16);
  }
  EXPECT_STREQ(got, name);
  // Without extras nothing is added: no TSC deadline, KVM's (empty) brand leaf kept.
  auto plain = normalize_cpuid(in, 0, 1);
  EXPECT_FALSE(plain[0].ecx & (1u << 24));
  EXPECT_EQ(plain.size(), 4u);  // the three plus the hypervisor leaf
  // A CPUID whose extended leaves end before the brand string gets none.
  in[1].eax = 0x80000001;
  in.pop_back();
  auto shortmax = normalize_cpuid(in, 0, 1, extras);
  EXPECT_EQ(shortmax.size(), 3u);
}

TEST(Aml, EncodingsMatchTheSpec) {
  EXPECT_EQ(aml::eisa_id("PNP0501"), (aml::Bytes{0x0c, 0x41, 0xd0, 0x05, 0x01}));
  EXPECT_EQ(aml::pkg_length(10), aml::Bytes{11});
  EXPECT_EQ(aml::pkg_length(0x3e), aml::Bytes{0x3f});             // largest one-byte length
  EXPECT_EQ(aml::pkg_length(0x3f), (aml::Bytes{0x41, 0x04}));  // 0x41 bytes in all
  EXPECT_EQ(aml::pkg_length(0x1000), (aml::Bytes{0x83, 0x00, 0x01}));
  EXPECT_EQ(aml::integer(0), aml::Bytes{0x00});
  EXPECT_EQ(aml::integer(0x1234), (aml::Bytes{0x0b, 0x34, 0x12}));
  EXPECT_EQ(aml::name_string("\\_SB_.COM1"), (aml::Bytes{'\\', 0x2e, '_', 'S', 'B', '_', 'C', 'O', 'M', '1'}));
  EXPECT_EQ(aml::name_string("RTC"), (aml::Bytes{'R', 'T', 'C', '_'}));
  EXPECT_EQ(aml::io_port(0x3f8, 8), (aml::Bytes{0x47, 1, 0xf8, 3, 0xf8, 3, 1, 8}));
  EXPECT_EQ(aml::irq_no_flags(4), (aml::Bytes{0x22, 0x10, 0x00}));
}

// What iasl emits for
//   OperationRegion (\VPMR, SystemIO, 0x0602, 0x01)
//   Field (\VPMR, ByteAcc, NoLock, Preserve) { VTTS, 8 }
//   Method (\_TTS, 1, NotSerialized) { Store (Arg0, \VTTS) }
TEST(Aml, TransitionMethodEncoding) {
  EXPECT_EQ(aml::io_region("\\VPMR", 0x602, 1),
            (aml::Bytes{0x5b, 0x80, '\\', 'V', 'P', 'M', 'R', 0x01, 0x0b, 0x02, 0x06, 0x01}));
  EXPECT_EQ(aml::byte_fields("\\VPMR", {"VTTS"}),
            (aml::Bytes{0x5b, 0x81, 0x0c, '\\', 'V', 'P', 'M', 'R', 0x01, 'V', 'T', 'T', 'S', 0x08}));
  EXPECT_EQ(aml::method("\\_TTS", 1, false, {aml::store(aml::arg(0), "\\VTTS")}),
            (aml::Bytes{0x14, 0x0e, '\\', '_', 'T', 'T', 'S', 0x01, 0x70, 0x68, '\\', 'V', 'T', 'T', 'S'}));
}

TEST(ResetVector, ResetsThroughTheI8042) {
  // cli; mov al, 0xfe; out 0x64, al; then hlt forever.
  EXPECT_EQ(kResetVectorCode[1], 0xb0);
  EXPECT_EQ(kResetVectorCode[2], 0xfe);
  EXPECT_EQ(kResetVectorCode[3], 0xe6);
  EXPECT_EQ(kResetVectorCode[4], kI8042Port + 4);
  EXPECT_EQ(kResetVectorAddr, 0xf0000u + 0xfff0u);  // F000:FFF0
  auto mem = GuestMemory::create(2 * kMiB, kMmioHoleStart, kMmioHoleEnd);
  ASSERT_TRUE(mem);
  ASSERT_TRUE(write_reset_vector(*mem));
  uint8_t got[sizeof kResetVectorCode];
  ASSERT_TRUE(mem->read(kResetVectorAddr, got));
  EXPECT_EQ(std::memcmp(got, kResetVectorCode, sizeof got), 0);
}

uint32_t u32(const std::vector<uint8_t>& b, size_t off) {
  uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}
uint64_t u64(const std::vector<uint8_t>& b, size_t off) {
  uint64_t v;
  std::memcpy(&v, b.data() + off, 8);
  return v;
}

// Finds `needle` in `hay`.
bool contains(const std::vector<uint8_t>& hay, std::initializer_list<uint8_t> needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}
bool contains(const std::vector<uint8_t>& hay, std::string_view s) {
  return std::search(hay.begin(), hay.end(), s.begin(), s.end()) != hay.end();
}

TEST(Acpi, VmgenidDeviceAndItsNotifier) {
  AcpiConfig cfg;
  EXPECT_FALSE(contains(build_dsdt_aml(cfg), "VM_Gen_Counter"));
  cfg.vmgenid = true;
  auto aml = build_dsdt_aml(cfg);
  EXPECT_TRUE(contains(aml, "VGEN"));
  EXPECT_TRUE(contains(aml, "VMGENCTR"));
  EXPECT_TRUE(contains(aml, "VM_Gen_Counter"));
  EXPECT_TRUE(contains(aml, "ACPI0013"));
  // Method(ADDR, 0) { Return(Package(2) { 0xff000, 0 }) }: MethodOp, PkgLength, "ADDR", flags 0,
  // ReturnOp, PackageOp, PkgLength, 2 elements, DWordConst 0x000ff000, Zero.
  EXPECT_TRUE(contains(aml, {0x14, 0x10, 'A', 'D', 'D', 'R', 0x00, 0xa4, 0x12, 0x08, 0x02, 0x0c, 0x00, 0xf0, 0x0f, 0x00, 0x00}));
  // Method(_EVT, 1, Serialized) { If (LEqual(Arg0, 12)) { Notify(\_SB_.VGEN, 0x80) } }
  EXPECT_TRUE(contains(aml, {'_', 'E', 'V', 'T', 0x09, 0xa0}));
  EXPECT_TRUE(contains(aml, {0x93, 0x68, 0x0a, 0x0c, 0x86, 0x5c, 0x2e, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N', 0x0a, 0x80}));
  // The GED's interrupt: an Extended Interrupt descriptor, consumer, edge, GSI 12.
  EXPECT_TRUE(contains(aml, {0x89, 0x06, 0x00, 0x03, 0x01, 0x0c, 0x00, 0x00, 0x00}));
  // The tables stay below the generation ID's page.
  AcpiTables t = build_acpi_tables(cfg, kAcpiStart);
  EXPECT_LE(kAcpiStart + t.blob.size(), kVmGenIdAddr);
}

TEST(Acpi, TablesHaveValidChecksumsAndLinks) {
  AcpiConfig cfg;
  cfg.cpu_count = 3;
  cfg.virtio_mmio.push_back({kVirtioMmioStart, 0x1000, kVirtioIrqStart});
  AcpiTables t = build_acpi_tables(cfg, kAcpiStart);
  const auto& b = t.blob;
  EXPECT_EQ(std::memcmp(b.data(), "RSD PTR ", 8), 0);
  EXPECT_EQ(acpi_checksum(b.data(), 20), 0);
  EXPECT_EQ(acpi_checksum(b.data(), 36), 0);
  EXPECT_EQ(u64(b, 24), kAcpiStart + t.xsdt);
  for (size_t off : {t.xsdt, t.fadt, t.madt, t.dsdt}) {
    uint32_t len = u32(b, off + 4);
    ASSERT_LE(off + len, b.size());
    EXPECT_EQ(acpi_checksum(b.data() + off, len), 0) << std::string(reinterpret_cast<const char*>(&b[off]), 4);
  }
  EXPECT_EQ(std::memcmp(&b[t.xsdt], "XSDT", 4), 0);
  EXPECT_EQ(u64(b, t.xsdt + 36), kAcpiStart + t.fadt);
  EXPECT_EQ(u64(b, t.xsdt + 44), kAcpiStart + t.madt);
  // FADT: hardware-reduced, sleep registers, DSDT link.
  EXPECT_EQ(std::memcmp(&b[t.fadt], "FACP", 4), 0);
  EXPECT_EQ(u32(b, t.fadt + 4), kFadtSize);
  EXPECT_TRUE(u32(b, t.fadt + fadt::kFlags) & fadt::kFlagHwReduced);
  EXPECT_EQ(u64(b, t.fadt + fadt::kXDsdt), kAcpiStart + t.dsdt);
  EXPECT_EQ(b[t.fadt + fadt::kSleepControl], 1);  // System I/O
  EXPECT_EQ(u64(b, t.fadt + fadt::kSleepControl + 4), kAcpiSleepPort);
  EXPECT_EQ(u64(b, t.fadt + fadt::kSleepStatus + 4), kAcpiSleepPort + 1u);
  EXPECT_EQ(b[t.fadt + fadt::kResetValue], 0xfe);
  // MADT: 3 local APICs, an IOAPIC, the IRQ0 override.
  EXPECT_EQ(std::memcmp(&b[t.madt], "APIC", 4), 0);
  EXPECT_EQ(u32(b, t.madt + 36), kLapicAddr);
  size_t end = t.madt + u32(b, t.madt + 4);
  int lapics = 0, ioapics = 0, isos = 0;
  for (size_t p = t.madt + 44; p < end; p += b[p + 1]) {
    ASSERT_GT(b[p + 1], 0);
    if (b[p] == 0) {
      EXPECT_EQ(b[p + 3], lapics);  // APIC id
      EXPECT_EQ(u32(b, p + 4), 1u);  // enabled
      ++lapics;
    }
    if (b[p] == 1) {
      ++ioapics;
      EXPECT_EQ(u32(b, p + 4), kIoapicAddr);
    }
    if (b[p] == 2) {
      ++isos;
      EXPECT_EQ(b[p + 3], 0);
      EXPECT_EQ(u32(b, p + 4), 2u);
    }
  }
  EXPECT_EQ(lapics, 3);
  EXPECT_EQ(ioapics, 1);
  EXPECT_EQ(isos, 1);
  // DSDT: COM1, \_S5_ and the virtio-mmio device.
  std::string dsdt(reinterpret_cast<const char*>(&b[t.dsdt]), u32(b, t.dsdt + 4));
  EXPECT_NE(dsdt.find("COM1"), std::string::npos);
  EXPECT_NE(dsdt.find("_S5_"), std::string::npos);
  EXPECT_NE(dsdt.find("LNRO0005"), std::string::npos);
  EXPECT_NE(dsdt.find("PS2K"), std::string::npos);  // the i8042 keyboard (PNP0303), which Linux finds only here
  EXPECT_NE(dsdt.find(std::string("\x14\x0e\\_TTS", 7)), std::string::npos);
  EXPECT_LE(b.size(), kResetVectorAddr - kAcpiStart);
}

}  // namespace
}  // namespace vessel::vmm::x86
