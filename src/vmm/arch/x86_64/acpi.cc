#include "vmm/arch/x86_64/acpi.h"

#include <cstring>

#include "common/strings.h"
#include "vmm/arch/x86_64/aml.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/devices/acpi_pm.h"

namespace vessel::vmm::x86 {

namespace {
using Bytes = std::vector<uint8_t>;

template <class T>
void put(Bytes& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof v);
}

// A table of `len` bytes with its standard 36-byte header; checksum set by finish().
Bytes sdt(const char* sig, size_t len, uint8_t revision) {
  Bytes b(len, 0);
  std::memcpy(b.data(), sig, 4);
  put<uint32_t>(b, 4, static_cast<uint32_t>(len));
  b[8] = revision;
  std::memcpy(b.data() + 10, "VESSEL", 6);
  std::memcpy(b.data() + 16, "VESSELVM", 8);
  put<uint32_t>(b, 24, 1);
  std::memcpy(b.data() + 28, "VSSL", 4);
  put<uint32_t>(b, 32, 1);
  return b;
}

void finish(Bytes& b) {
  b[9] = 0;
  b[9] = static_cast<uint8_t>(-acpi_checksum(b.data(), b.size()));
}

// Generic address structure: 8-bit System I/O register.
void put_gas_io8(Bytes& b, size_t off, uint16_t port) {
  b[off] = 1;      // System I/O
  b[off + 1] = 8;  // bit width
  b[off + 2] = 0;  // bit offset
  b[off + 3] = 1;  // byte access
  put<uint64_t>(b, off + 4, port);
}

Bytes build_fadt(uint64_t dsdt_addr) {
  Bytes b = sdt("FACP", kFadtSize, 6);
  put<uint32_t>(b, fadt::kDsdt, static_cast<uint32_t>(dsdt_addr));
  put<uint64_t>(b, fadt::kXDsdt, dsdt_addr);
  put<uint16_t>(b, fadt::kIapcBootArch, (1 << 2) | (1 << 3));  // no VGA, no MSI; no 8042 to probe
  put<uint32_t>(b, fadt::kFlags,
                fadt::kFlagHwReduced | fadt::kFlagResetReg | fadt::kFlagPowerButton | fadt::kFlagSleepButton);
  put_gas_io8(b, fadt::kResetReg, kI8042Port + 4);  // 0xFE to the i8042 command port resets
  b[fadt::kResetValue] = 0xfe;
  b[fadt::kMinorVersion] = 5;
  put_gas_io8(b, fadt::kSleepControl, kAcpiSleepPort);
  put_gas_io8(b, fadt::kSleepStatus, kAcpiSleepPort + 1);
  std::memcpy(b.data() + fadt::kHypervisorId, "VESSEL\0\0", 8);
  finish(b);
  return b;
}

Bytes build_madt(unsigned cpus) {
  Bytes body;
  auto add = [&](std::initializer_list<uint8_t> head, std::initializer_list<uint32_t> words32 = {}) {
    body.insert(body.end(), head);
    for (uint32_t w : words32)
      for (int i = 0; i < 4; ++i) body.push_back(static_cast<uint8_t>(w >> (8 * i)));
  };
  for (unsigned i = 0; i < cpus; ++i)  // Processor Local APIC: uid, APIC id, enabled
    add({0, 8, static_cast<uint8_t>(i), static_cast<uint8_t>(i)}, {1});
  add({1, 12, 0, 0}, {static_cast<uint32_t>(kIoapicAddr), 0});  // I/O APIC id 0 at GSI 0
  add({2, 10, 0, 0}, {2});                                      // ISA IRQ 0 -> GSI 2
  body.push_back(0);                                            //   flags: conforming
  body.push_back(0);
  add({4, 6, 0xff, 0, 0, 1});                                   // LINT1 is NMI on all CPUs
  Bytes b = sdt("APIC", kSdtHeaderSize + 8 + body.size(), 4);
  put<uint32_t>(b, 36, static_cast<uint32_t>(kLapicAddr));
  put<uint32_t>(b, 40, 1);  // PCAT_COMPAT: there are 8259s
  std::memcpy(b.data() + 44, body.data(), body.size());
  finish(b);
  return b;
}
}  // namespace

uint8_t acpi_checksum(const uint8_t* p, size_t len) {
  uint8_t s = 0;
  for (size_t i = 0; i < len; ++i) s = static_cast<uint8_t>(s + p[i]);
  return s;
}

std::vector<uint8_t> build_dsdt_aml(const AcpiConfig& cfg) {
  namespace a = aml;
  std::vector<Bytes> sb;
  if (cfg.com1) {
    sb.push_back(a::device("COM1", {a::name("_HID", a::eisa_id("PNP0501")), a::name("_UID", a::integer(1)),
                                    a::name("_CRS", a::resource_template({a::io_port(kCom1Port, 8),
                                                                          a::irq_no_flags(kCom1Irq)}))}));
  }
  // The i8042 keyboard controller (as Firecracker describes it): the FADT says
  // "no 8042" (IAPC_BOOT_ARCH bit 1 clear), so Linux finds the controller only
  // through this PNP0303 device; without it there is no keyboard and
  // SendCtrlAltDel would reach nothing.
  sb.push_back(a::device("PS2K", {a::name("_HID", a::eisa_id("PNP0303")),
                                  a::name("_CRS", a::resource_template({a::io_port(kI8042Port, 1),
                                                                        a::io_port(kI8042Port + 4, 1),
                                                                        a::irq_no_flags(kKeyboardIrq)}))}));
  sb.push_back(a::device("RTC", {a::name("_HID", a::eisa_id("PNP0B00")),
                                 a::name("_CRS", a::resource_template({a::io_port(kRtcPort, 2)}))}));
  for (size_t i = 0; i < cfg.virtio_mmio.size(); ++i) {
    const auto& d = cfg.virtio_mmio[i];
    char dev[5];
    std::snprintf(dev, sizeof dev, "V%03u", static_cast<unsigned>(i % 1000));
    sb.push_back(a::device(dev, {a::name("_HID", a::string("LNRO0005")), a::name("_UID", a::integer(i)),
                                 a::name("_CCA", a::integer(1)),
                                 a::name("_CRS", a::resource_template({a::memory32_fixed(true, static_cast<uint32_t>(d.base), d.size),
                                                                       a::interrupt(true, false, false, d.irq)}))}));
  }
  if (cfg.vmgenid) {
    // Microsoft's "Virtual Machine Generation ID" device: ADDR gives the
    // guest physical address of the 16-byte ID (low and high 32 bits).
    // Linux's vmgenid driver matches "VM_GEN_COUNTER" (ACPICA upper-cases _CID).
    sb.push_back(a::device("VGEN", {a::name("_HID", a::string("VMGENCTR")), a::name("_CID", a::string("VM_Gen_Counter")),
                                    a::name("_DDN", a::string("VM_Gen_Counter")),
                                    a::method("ADDR", 0, false,
                                              {a::return_(a::package({a::integer(kVmGenIdAddr & 0xffffffff),
                                                                      a::integer(kVmGenIdAddr >> 32)}))})}));
    // Hardware-reduced ACPI has no GPEs: the Generic Event Device's
    // interrupt runs _EVT(GSI), which sends Notify(VGEN, 0x80).
    sb.push_back(a::device(
        "GED0", {a::name("_HID", a::string("ACPI0013")), a::name("_UID", a::integer(0)),
                 a::name("_CRS", a::resource_template({a::interrupt(true, false, false, kGedGsi)})),
                 a::method("_EVT", 1, true,
                           {a::if_(a::lequal(a::arg(0), a::integer(kGedGsi)),
                                   {a::notify("\\_SB_.VGEN", a::integer(0x80))})})}));
  }
  Bytes out = a::scope("\\_SB_", sb);
  Bytes s5 = a::name("\\_S5_", a::package({a::integer(AcpiPm::kS5Type), a::integer(0), a::integer(0), a::integer(0)}));
  out.insert(out.end(), s5.begin(), s5.end());
  // \_TTS(state) writes the state the OS is about to enter to AcpiPm's
  // transition register: how the VMM learns that a restart was asked for.
  for (const Bytes& t : {a::io_region("\\VPMR", kAcpiSleepPort + AcpiPm::kTransition, 1),
                         a::byte_fields("\\VPMR", {"VTTS"}),
                         a::method("\\_TTS", 1, false, {a::store(a::arg(0), "\\VTTS")})})
    out.insert(out.end(), t.begin(), t.end());
  return out;
}

AcpiTables build_acpi_tables(const AcpiConfig& cfg, uint64_t base) {
  AcpiTables t;
  t.base = base;
  auto align = [&] { t.blob.resize((t.blob.size() + 15) & ~size_t(15), 0); };
  auto place = [&](const Bytes& table) {
    align();
    size_t off = t.blob.size();
    t.blob.insert(t.blob.end(), table.begin(), table.end());
    return off;
  };
  t.blob.resize(36, 0);  // RSDP, filled last

  Bytes aml_body = build_dsdt_aml(cfg);
  Bytes dsdt = sdt("DSDT", kSdtHeaderSize + aml_body.size(), 2);
  std::memcpy(dsdt.data() + kSdtHeaderSize, aml_body.data(), aml_body.size());
  finish(dsdt);
  t.dsdt = place(dsdt);
  t.fadt = place(build_fadt(base + t.dsdt));
  t.madt = place(build_madt(cfg.cpu_count));
  Bytes xsdt = sdt("XSDT", kSdtHeaderSize + 16, 1);
  put<uint64_t>(xsdt, 36, base + t.fadt);
  put<uint64_t>(xsdt, 44, base + t.madt);
  finish(xsdt);
  t.xsdt = place(xsdt);

  Bytes& b = t.blob;
  std::memcpy(b.data(), "RSD PTR ", 8);
  std::memcpy(b.data() + 9, "VESSEL", 6);
  b[15] = 2;  // ACPI 2.0+
  put<uint32_t>(b, 20, 36);
  put<uint64_t>(b, 24, base + t.xsdt);
  b[8] = static_cast<uint8_t>(-acpi_checksum(b.data(), 20));
  b[32] = static_cast<uint8_t>(-acpi_checksum(b.data(), 36));
  t.rsdp = 0;
  return t;
}

Result<uint64_t> write_acpi_tables(GuestMemory& mem, const AcpiConfig& cfg) {
  AcpiTables t = build_acpi_tables(cfg, kAcpiStart);
  if (t.blob.size() > kVmGenIdAddr - kAcpiStart) return Error::invalid(cat("ACPI tables of ", t.blob.size(), " bytes do not fit"));
  TRYC(mem.write(kAcpiStart, t.blob), "write ACPI tables");
  return kAcpiStart;
}

}  // namespace vessel::vmm::x86
