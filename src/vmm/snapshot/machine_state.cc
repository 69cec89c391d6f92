#include "vmm/snapshot/machine_state.h"

#include <algorithm>

#include "common/log.h"
#include "common/strings.h"
#include "vmm/hex.h"
#include "vmm/virtio/balloon/balloon.h"
#include "vmm/virtio/net/net.h"
#include "vmm/virtio/vsock/vsock.h"

namespace vessel::vmm::snapshot {

namespace {
constexpr uint32_t kMsrTsc = 0x10, kMsrTscDeadline = 0x6e0;

// The saved entry of MSR `index`, or null.
const kvm_msr_entry* find_msr(const std::vector<kvm_msr_entry>& msrs, uint32_t index) {
  auto it = std::find_if(msrs.begin(), msrs.end(), [index](const kvm_msr_entry& e) { return e.index == index; });
  return it == msrs.end() ? nullptr : &*it;
}
}  // namespace

bool msr_restorable(uint32_t index, uint32_t kvm_features, bool lapic) {
  auto has = [&](unsigned bit) { return (kvm_features >> bit) & 1; };
  switch (index) {
    case 0x11:          // MSR_KVM_WALL_CLOCK
    case 0x12:          // MSR_KVM_SYSTEM_TIME
      return has(0);    // KVM_FEATURE_CLOCKSOURCE
    case 0x4b564d00:    // MSR_KVM_WALL_CLOCK_NEW
    case 0x4b564d01:    // MSR_KVM_SYSTEM_TIME_NEW
      return has(3);    // KVM_FEATURE_CLOCKSOURCE2
    case 0x4b564d02:    // MSR_KVM_ASYNC_PF_EN
      return has(4);
    case 0x4b564d03:    // MSR_KVM_STEAL_TIME
      return has(5);
    case 0x4b564d04:    // MSR_KVM_PV_EOI_EN
      return has(6) && lapic;
    case 0x4b564d05:    // MSR_KVM_POLL_CONTROL
      return has(12);
    case 0x4b564d06:    // MSR_KVM_ASYNC_PF_INT
      return has(14) && lapic;
    case 0x4b564d07:    // MSR_KVM_ASYNC_PF_ACK
      return has(14);
    case 0x4b564d08:    // MSR_KVM_MIGRATION_CONTROL
      return has(17);
    case kMsrTscDeadline:
      return lapic;
    default:
      break;
  }
  if (index >= 0x40000000 && index <= 0x400000ff) return false;  // Hyper-V
  if (index >= 0x4b564d00 && index <= 0x4b564dff) return false;  // KVM PV MSRs newer than this list
  return true;
}

Result<std::vector<kvm_msr_entry>> read_saveable_msrs(const Kvm& kvm, VcpuFd& vcpu, uint32_t kvm_features, bool lapic) {
  auto list = TRY(kvm.msr_index_list());
  std::vector<kvm_msr_entry> want;
  for (uint32_t i : list) {
    if (!msr_restorable(i, kvm_features, lapic)) continue;
    kvm_msr_entry e{};
    e.index = i;
    want.push_back(e);
  }
  // KVM_GET_MSRS stops at the first MSR it cannot read (one this vCPU's CPUID
  // lacks): keep what it read, drop that one, go on from the next.
  std::vector<kvm_msr_entry> out;
  size_t i = 0;
  while (i < want.size()) {
    size_t n = TRY(vcpu.get_msrs(std::span<kvm_msr_entry>(want).subspan(i)));
    out.insert(out.end(), want.begin() + static_cast<std::ptrdiff_t>(i), want.begin() + static_cast<std::ptrdiff_t>(i + n));
    i += n + 1;
  }
  // TSC before TSC deadline (the deadline is relative to it).
  std::stable_partition(out.begin(), out.end(), [](const kvm_msr_entry& e) { return e.index != kMsrTscDeadline; });
  std::stable_partition(out.begin(), out.end(), [](const kvm_msr_entry& e) { return e.index == kMsrTsc; });
  return out;
}

Status check_sregs(const kvm_sregs& r) {
  constexpr uint64_t kCr0Pe = 1, kCr0Nw = 1ull << 29, kCr0Cd = 1ull << 30, kCr0Pg = 1ull << 31;
  constexpr uint64_t kCr4Pae = 1ull << 5, kEferLme = 1ull << 8, kEferLma = 1ull << 10;
  const char* broken = nullptr;
  if ((r.efer & kEferLme) && (r.cr0 & kCr0Pg)) {
    if (!(r.cr4 & kCr4Pae)) broken = "long mode (EFER.LME and CR0.PG) without CR4.PAE";
    else if (!(r.efer & kEferLma)) broken = "EFER.LME and CR0.PG without EFER.LMA";
  } else if (r.efer & kEferLma) {
    broken = "EFER.LMA without EFER.LME and CR0.PG";
  } else if (r.cs.l) {
    broken = "a 64-bit code segment (CS.L) outside long mode";
  }
  if (!broken && (r.cr0 & kCr0Pg) && !(r.cr0 & kCr0Pe)) broken = "CR0.PG without CR0.PE";
  if (!broken && (r.cr0 & kCr0Nw) && !(r.cr0 & kCr0Cd)) broken = "CR0.NW without CR0.CD";
  if (!broken) return ok();
  return Error::invalid(cat("registers no x86 CPU can be in: ", broken, " (cr0=", hex(r.cr0), " cr3=", hex(r.cr3),
                            " cr4=", hex(r.cr4), " efer=", hex(r.efer), " cs.l=", static_cast<int>(r.cs.l), ")"));
}

namespace {
uint32_t kvm_features_of(const std::vector<kvm_cpuid_entry2>& cpuid) {
  for (const auto& e : cpuid)
    if (e.function == 0x40000001) return e.eax;
  return 0;
}
}  // namespace

Result<VcpuState> capture_vcpu(const Kvm& kvm, VcpuFd& vcpu, const KnownVcpu& known, size_t xsave_size, bool lapic) {
  VcpuState s;
  s.mp_state = TRY(vcpu.get_mp_state());
  s.regs = TRY(vcpu.get_regs());
  s.sregs = TRY(vcpu.get_sregs());
  TRYC(check_sregs(s.sregs), "KVM_GET_SREGS gave a damaged CPU state");
  if (xsave_size > 0) s.xsave = TRY(vcpu.get_xsave(xsave_size));
  else s.fpu = TRY(vcpu.get_fpu());
  if (auto x = vcpu.get_xcrs()) {
    s.has_xcrs = true;
    s.xcrs = *x;
  }
  s.debugregs = TRY(vcpu.get_debugregs());
  if (lapic) {
    s.lapic = TRY(vcpu.get_lapic());
    s.has_lapic = true;
  }
  s.cpuid = known.cpuid ? *known.cpuid : TRY(vcpu.get_cpuid());
  if (known.msrs.empty()) {
    s.msrs = TRYC(read_saveable_msrs(kvm, vcpu, kvm_features_of(s.cpuid), lapic), "list the vCPU MSRs");
  } else {
    for (uint32_t i : known.msrs) {
      kvm_msr_entry e{};
      e.index = i;
      s.msrs.push_back(e);
    }
    size_t n = TRY(vcpu.get_msrs(s.msrs));
    if (n != s.msrs.size()) return Error::invalid(cat("KVM_GET_MSRS: could not read MSR ", hex(s.msrs[n].index)));
  }
  s.tsc_khz = known.tsc_khz ? known.tsc_khz : TRY(vcpu.get_tsc_khz());
  s.events = TRY(vcpu.get_vcpu_events());
  return s;
}

Status apply_vcpu(VcpuFd& vcpu, const VcpuState& s) {
  TRY(vcpu.set_cpuid(s.cpuid));
  if (s.tsc_khz != 0) {
    uint32_t here = TRY(vcpu.get_tsc_khz());
    if (here != s.tsc_khz)
      TRYC(vcpu.set_tsc_khz(s.tsc_khz), cat("the snapshot's TSC runs at ", s.tsc_khz, " kHz, this host's at ", here, " kHz"));
  }
  TRY(vcpu.set_mp_state(s.mp_state));
  TRY(vcpu.set_regs(s.regs));
  const kvm_sregs& r = s.sregs;
  TRYC(check_sregs(r), "the saved special registers");
  TRYC(vcpu.set_sregs(r), cat("cr0=", hex(r.cr0), " cr3=", hex(r.cr3), " cr4=", hex(r.cr4), " efer=", hex(r.efer),
                              " apic_base=", hex(r.apic_base), " cs.l=", static_cast<int>(r.cs.l)));
  if (!s.xsave.empty()) TRY(vcpu.set_xsave(s.xsave));
  else TRY(vcpu.set_fpu(s.fpu));
  if (s.has_xcrs) TRY(vcpu.set_xcrs(s.xcrs));
  TRY(vcpu.set_debugregs(s.debugregs));
  if (s.has_lapic) TRY(vcpu.set_lapic(s.lapic));
  TRY(vcpu.set_msrs(s.msrs));
  kvm_vcpu_events ev = s.events;
  ev.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
  TRY(vcpu.set_vcpu_events(ev));
  return ok();
}

Status learn_vcpu_constants(Machine& m) {
  if (m.started()) return Error::invalid("the vCPUs' constants are read before they first run");
  Machine::VcpuConstants k;
  for (unsigned i = 0; i < m.cpu_count(); ++i) k.cpuid.push_back(TRYC(m.vcpu_fd(i).get_cpuid(), cat("vCPU ", i)));
  if (m.cpu_count() > 0) {
    k.tsc_khz = TRY(m.vcpu_fd(0).get_tsc_khz());
    auto msrs = TRYC(read_saveable_msrs(m.kvm(), m.vcpu_fd(0), kvm_features_of(k.cpuid[0]), m.has_irqchip()),
                     "list the vCPU MSRs");
    for (const auto& e : msrs) k.msrs.push_back(e.index);
  }
  m.vcpu_constants() = std::move(k);
  return ok();
}

Status capture_machine(Machine& m, SnapshotState& out) {
  if (!m.paused()) return Error::invalid("the VM must be paused to be snapshotted");
  VmState& vm = out.vm;
  vm.irqchip = m.has_irqchip();
  if (vm.irqchip) {
    vm.pic_master = TRY(m.vm_fd().get_irqchip(KVM_IRQCHIP_PIC_MASTER));
    vm.pic_slave = TRY(m.vm_fd().get_irqchip(KVM_IRQCHIP_PIC_SLAVE));
    vm.ioapic = TRY(m.vm_fd().get_irqchip(KVM_IRQCHIP_IOAPIC));
    vm.pit = TRY(m.vm_fd().get_pit2());
  }
  if (auto c = m.paused_clock()) {
    vm.has_clock = true;
    vm.clock = *c;
  }

  size_t xsave_size = 0;
  if (m.kvm().check_extension(KVM_CAP_XSAVE)) {
    int x2 = m.vm_fd().check_extension(KVM_CAP_XSAVE2);
    xsave_size = x2 > 4096 ? static_cast<size_t>(x2) : 4096;
  }
  // Without a known list, vCPU 0 finds the MSRs to save and reads them in
  // the same calls; the others read that list.
  out.vcpus.clear();
  Machine::VcpuConstants& known = m.vcpu_constants();
  bool cpuid_known = known.cpuid.size() == m.cpu_count();
  for (unsigned i = 0; i < m.cpu_count(); ++i) {
    KnownVcpu k{known.msrs, cpuid_known ? &known.cpuid[i] : nullptr, known.tsc_khz};
    out.vcpus.push_back(TRYC(capture_vcpu(m.kvm(), m.vcpu_fd(i), k, xsave_size, m.has_irqchip()), cat("vCPU ", i)));
    if (i == 0 && known.msrs.empty())
      for (const auto& e : out.vcpus.front().msrs) known.msrs.push_back(e.index);
  }
  if (!cpuid_known) {
    known.cpuid.clear();
    for (const auto& v : out.vcpus) known.cpuid.push_back(v.cpuid);
  }
  if (!out.vcpus.empty()) known.tsc_khz = out.vcpus.front().tsc_khz;

  DeviceStates& d = out.devices;
  d.serial = m.serial().save();
  d.rtc = m.rtc().save();
  d.i8042 = m.i8042().save();
  d.acpi_pm = m.acpi_pm().save();
  d.virtio.clear();
  for (size_t i = 0; i < m.virtio_count(); ++i) {
    auto& t = m.virtio_transport(i);
    VirtioState v;
    v.device_type = t.device().device_type();
    v.mmio = t.save();
    if (auto* net = dynamic_cast<virtio::NetDevice*>(&t.device())) v.net = net->save();
    if (auto* b = dynamic_cast<virtio::BalloonDevice*>(&t.device())) v.balloon = b->save();
    if (auto* vs = dynamic_cast<virtio::VsockDevice*>(&t.device())) v.vsock = vs->save();
    d.virtio.push_back(std::move(v));
  }
  return ok();
}

namespace {
// KVM takes a host write of MSR_IA32_TSC that lands within a second of the TSC
// it expects (its last write plus the time since) for an attempt to keep vCPUs
// in step, and keeps its own offset instead (kvm_synchronize_tsc()): a machine
// restored within about a second of being made (a migration's destination
// builds its machine while the pages come) got a guest TSC up to a second off
// the saved one, backwards too, and a guest pacing itself by the TSC stalled
// that long. So vCPU 0's TSC is read back: when it is more than a millisecond
// off, its offset is corrected through KVM_VCPU_TSC_OFFSET, which KVM takes as
// it is, and every vCPU gets that one offset (they were in step when saved).
// A KVM without the attribute (before Linux 5.16) keeps what the MSR write gave.
// A TSC-deadline timer was armed by the MSR write against the TSC before the
// correction, so it would fire that much early or late: each vCPU's deadline is
// written once more against the corrected TSC.
Status settle_tsc(Machine& m, const SnapshotState& s) {
  const VcpuState& v0 = s.vcpus.front();
  const kvm_msr_entry* saved = find_msr(v0.msrs, kMsrTsc);
  if (!saved || v0.tsc_khz == 0) return ok();
  VcpuFd& cpu0 = m.vcpu_fd(0);
  auto offset = TRY(cpu0.get_tsc_offset());
  if (!offset) return ok();
  kvm_msr_entry now{};
  now.index = kMsrTsc;
  if (TRY(cpu0.get_msrs(std::span<kvm_msr_entry>(&now, 1))) != 1) return ok();
  const int64_t off_by = static_cast<int64_t>(saved->data - now.data);  // what the guest lacks
  if (off_by <= static_cast<int64_t>(v0.tsc_khz) && -off_by <= static_cast<int64_t>(v0.tsc_khz)) return ok();
  const uint64_t fixed = *offset + static_cast<uint64_t>(off_by);
  for (unsigned i = 0; i < m.cpu_count(); ++i) TRYC(m.vcpu_fd(i).set_tsc_offset(fixed), cat("vCPU ", i));
  for (unsigned i = 0; i < m.cpu_count(); ++i) {
    const kvm_msr_entry* deadline = find_msr(s.vcpus[i].msrs, kMsrTscDeadline);
    if (!deadline || deadline->data == 0) continue;  // 0: no deadline armed
    TRYC(m.vcpu_fd(i).set_msrs(std::span<const kvm_msr_entry>(deadline, 1)), cat("vCPU ", i, ": re-arm the TSC deadline"));
  }
  log::info("snapshot", cat("restore: the guest TSC was ", off_by, " cycles off the saved one after KVM_SET_MSRS (KVM kept its own offset); set the offset"));
  return ok();
}
}  // namespace

Status apply_machine(Machine& m, const SnapshotState& s) {
  if (s.vcpus.size() != m.cpu_count()) return Error::invalid(cat("the snapshot has ", s.vcpus.size(), " vCPUs, the machine ", m.cpu_count()));
  if (s.vm.irqchip != m.has_irqchip()) return Error::invalid("the snapshot's irqchip setting differs from the machine's");
  if (s.vm.irqchip) {
    TRY(m.vm_fd().set_irqchip(s.vm.pic_master));
    TRY(m.vm_fd().set_irqchip(s.vm.pic_slave));
    TRY(m.vm_fd().set_irqchip(s.vm.ioapic));
    TRY(m.vm_fd().set_pit2(s.vm.pit));
  }
  for (unsigned i = 0; i < m.cpu_count(); ++i) TRYC(apply_vcpu(m.vcpu_fd(i), s.vcpus[i]), cat("vCPU ", i));
  if (!s.vcpus.empty()) TRYC(settle_tsc(m, s), "set the guest TSC");
  {
    Machine::VcpuConstants k;
    for (const auto& v : s.vcpus) k.cpuid.push_back(v.cpuid);
    if (!s.vcpus.empty()) {
      k.tsc_khz = s.vcpus.front().tsc_khz;  // 0 (not in the state): read at the next capture
      for (const auto& e : s.vcpus.front().msrs) k.msrs.push_back(e.index);
    }
    m.vcpu_constants() = std::move(k);
  }
  if (s.vm.has_clock) m.set_paused_clock(s.vm.clock);

  m.serial().restore(s.devices.serial);
  m.rtc().restore(s.devices.rtc);
  m.i8042().restore(s.devices.i8042);
  m.acpi_pm().restore(s.devices.acpi_pm);
  if (s.devices.virtio.size() != m.virtio_count())
    return Error::invalid(cat("the snapshot has ", s.devices.virtio.size(), " virtio devices, the machine ", m.virtio_count()));
  for (size_t i = 0; i < m.virtio_count(); ++i) {
    auto& t = m.virtio_transport(i);
    const VirtioState& v = s.devices.virtio[i];
    if (v.device_type != t.device().device_type())
      return Error::invalid(cat("virtio device ", i, ": the snapshot's is of type ", v.device_type, ", the machine's ",
                                t.device().device_type()));
    if (v.net) {
      auto* net = dynamic_cast<virtio::NetDevice*>(&t.device());
      if (!net) return Error::invalid(cat("virtio device ", i, ": net state for a device that is not virtio-net"));
      net->restore(*v.net);
    }
    auto* balloon = dynamic_cast<virtio::BalloonDevice*>(&t.device());
    if (v.balloon) {
      if (!balloon) return Error::invalid(cat("virtio device ", i, ": balloon state for a device that is not virtio-balloon"));
      TRYC(balloon->restore(*v.balloon), cat("virtio device ", i));
    }
    auto* vsock = dynamic_cast<virtio::VsockDevice*>(&t.device());
    if (v.vsock) {
      if (!vsock) return Error::invalid(cat("virtio device ", i, ": vsock state for a device that is not virtio-vsock"));
      TRYC(vsock->restore(*v.vsock), cat("virtio device ", i));
    }
    TRYC(t.restore(v.mmio), cat("virtio device ", i));
    if (vsock) {
      // The guest's connections ended with the snapshot's VMM: tell its driver
      // (an event buffer it posted), so its sockets fail and it reconnects.
      auto s = t.update_device([&](virtio::VirtioDevice&) { return vsock->send_transport_reset(t); });
      if (!s) log::warn("snapshot", cat("vsock: transport reset not sent: ", s.error().message()));
    }
  }
  return ok();
}

}  // namespace vessel::vmm::snapshot
