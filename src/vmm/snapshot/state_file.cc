#include "vmm/snapshot/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/crc32c.h"
#include "common/fs.h"
#include "common/strings.h"
#include "vmm/snapshot/codec.h"

namespace vessel::vmm::snapshot {

namespace {
constexpr uint32_t tag(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}
constexpr uint32_t kTagIds = tag("IDS "), kTagSpec = tag("SPEC"), kTagDisk = tag("DISK"), kTagVm = tag("VMST"),
                   kTagVcpu = tag("VCPU"), kTagDevs = tag("DEVS"), kTagMem = tag("MEMF"),
                   kTagConf = tag("CONF");

// Bounds on what a state file may claim.
constexpr uint32_t kMaxDevices = 64, kMaxQueues = 64, kMaxMsrs = 4096, kMaxCpuid = 256, kMaxDisks = 64;
constexpr size_t kMaxString = 4096, kMaxXsave = 1 << 20, kMaxConfig = 1 << 20;
constexpr uint64_t kMaxMemory = 1ULL << 42;  // 4 TiB
constexpr uint32_t kMaxRanges = 1u << 24;

std::string tag_name(uint32_t t) {
  std::string s(4, ' ');
  for (int i = 0; i < 4; ++i) {
    char c = static_cast<char>((t >> (8 * i)) & 0xff);
    s[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

void section(ByteWriter& w, uint32_t t, const ByteWriter& body) {
  w.u32(t);
  w.u64(body.size());
  ByteWriter& b = const_cast<ByteWriter&>(body);
  w.raw(b.data().data(), b.size());
}

// ---- encoding ----

void put_spec(ByteWriter& w, const VmSpec& s, uint32_t version) {
  w.u32(s.cpus);
  w.u64(s.memory);
  w.boolean(s.irqchip);
  w.u32(static_cast<uint32_t>(s.devices.size()));
  for (const auto& d : s.devices) {
    w.u8(static_cast<uint8_t>(d.kind));
    w.str(d.path);
    w.boolean(d.block.readonly);
    w.str(d.block.serial);
    w.u64(d.block.bandwidth);
    w.u64(d.block.iops);
    w.str(d.net.tap);
    w.raw(d.net.mac.data(), 6);
    w.boolean(d.net.mac_set);
    w.u64(d.net.bandwidth);
    w.u64(d.net.iops);
    if (version < 3) continue;
    w.u32(d.balloon.target_pages);
    w.boolean(d.balloon.deflate_on_oom);
    w.u32(d.balloon.stats_interval_s);
    w.boolean(d.balloon.free_page_reporting);
    w.u64(d.vsock.guest_cid);
    w.str(d.vsock.uds_path);
  }
  if (version >= 2) w.u64(s.vmgenid_addr);
}

void put_vcpu(ByteWriter& w, const VcpuState& v) {
  w.u32(static_cast<uint32_t>(v.cpuid.size()));
  for (const auto& e : v.cpuid) w.blob(e);
  w.blob(v.mp_state);
  w.blob(v.regs);
  w.blob(v.sregs);
  w.bytes(v.xsave);
  w.blob(v.fpu);
  w.boolean(v.has_xcrs);
  w.blob(v.xcrs);
  w.blob(v.debugregs);
  w.boolean(v.has_lapic);
  w.blob(v.lapic);
  w.u32(static_cast<uint32_t>(v.msrs.size()));
  for (const auto& m : v.msrs) {
    w.u32(m.index);
    w.u64(m.data);
  }
  w.blob(v.events);
  w.u32(v.tsc_khz);
}

void put_queue(ByteWriter& w, const virtio::QueueState& q) {
  w.u16(q.max_size);
  w.u16(q.size);
  w.boolean(q.ready);
  w.u64(q.desc_table);
  w.u64(q.avail_ring);
  w.u64(q.used_ring);
  w.u16(q.next_avail);
  w.u16(q.next_used);
  w.u16(q.signalled_used);
  w.boolean(q.signalled_used_valid);
  w.boolean(q.event_idx);
  w.boolean(q.indirect);
}

void put_balloon(ByteWriter& w, const virtio::BalloonState& b) {
  w.u32(b.options.target_pages);
  w.boolean(b.options.deflate_on_oom);
  w.u32(b.options.stats_interval_s);
  w.boolean(b.options.free_page_reporting);
  w.u32(b.actual_pages);
  for (const auto& v : b.stats) {
    w.boolean(v.has_value());
    w.u64(v.value_or(0));
  }
  w.boolean(b.stats_buffer_held);
  w.u16(b.stats_buffer_head);
  const auto& c = b.counters;
  for (uint64_t x : {c.inflated_pages, c.deflated_pages, c.reported_bytes, c.invalid_pfns, c.discard_errors,
                     c.stats_received, c.stats_polls})
    w.u64(x);
}

void put_devices(ByteWriter& w, const DeviceStates& d, uint32_t version) {
  const SerialState& s = d.serial;
  for (uint8_t b : {s.dll, s.dlm, s.ier, s.lcr, s.mcr, s.msr, s.scr, s.fcr}) w.u8(b);
  w.boolean(s.thr_interrupt_pending);
  w.boolean(s.irq_level);
  w.raw(s.rx.data(), s.rx.size());
  w.u8(s.rx_head);
  w.u8(s.rx_count);
  w.u8(d.rtc.index);
  w.raw(d.rtc.cmos.data(), d.rtc.cmos.size());
  if (version >= 4) w.u64(static_cast<uint64_t>(d.rtc.offset));
  for (uint8_t b : {d.i8042.status, d.i8042.control, d.i8042.out, d.i8042.pending_cmd}) w.u8(b);
  w.raw(d.i8042.keys.data(), d.i8042.keys.size());
  w.u8(d.i8042.keys_count);
  w.u8(d.acpi_pm.status);
  w.u32(static_cast<uint32_t>(d.virtio.size()));
  for (const auto& v : d.virtio) {
    w.u32(v.device_type);
    const auto& m = v.mmio;
    w.u32(m.status);
    w.u32(m.device_features_sel);
    w.u32(m.driver_features_sel);
    w.u64(m.driver_features);
    w.u32(m.queue_sel);
    w.u32(m.interrupt_status);
    w.u32(m.config_generation);
    w.u32(static_cast<uint32_t>(m.queues.size()));
    for (const auto& q : m.queues) put_queue(w, q);
    w.boolean(v.net.has_value());
    if (v.net) w.raw(v.net->mac.data(), 6);
    if (version < 3) continue;
    w.boolean(v.balloon.has_value());
    if (v.balloon) put_balloon(w, *v.balloon);
    w.boolean(v.vsock.has_value());
    if (v.vsock) w.u64(v.vsock->guest_cid);
  }
}

// ---- decoding ----

Result<VmSpec> get_spec(ByteReader& r, uint32_t version) {
  VmSpec s;
  s.cpus = TRY(r.u32("vCPU count"));
  if (s.cpus == 0 || s.cpus > 254) return r.bad("vCPU count", cat(s.cpus, " is not 1 to 254"));
  s.memory = TRY(r.u64("memory size"));
  if (s.memory == 0 || s.memory % 4096 != 0 || s.memory > kMaxMemory)
    return r.bad("memory size", cat(s.memory, " is not a multiple of 4 KiB up to 4 TiB"));
  s.irqchip = TRY(r.boolean("irqchip"));
  uint32_t n = TRY(r.count("device count", kMaxDevices, 1));
  for (uint32_t i = 0; i < n; ++i) {
    DeviceSpec d;
    uint8_t kind = TRY(r.u8("device kind"));
    uint8_t max_kind = version >= 3 ? 5 : 3;
    if (kind < 1 || kind > max_kind) return r.bad(cat("device ", i, " kind"), cat(unsigned{kind}, " is unknown"));
    d.kind = static_cast<DeviceSpec::Kind>(kind);
    d.path = TRY(r.str("device path", kMaxString));
    d.block.readonly = TRY(r.boolean("block readonly"));
    d.block.serial = TRY(r.str("block serial", kMaxString));
    d.block.bandwidth = TRY(r.u64("block bandwidth"));
    d.block.iops = TRY(r.u64("block iops"));
    d.net.tap = TRY(r.str("net tap", kMaxString));
    for (auto& b : d.net.mac) b = TRY(r.u8("net mac"));
    d.net.mac_set = TRY(r.boolean("net mac_set"));
    d.net.bandwidth = TRY(r.u64("net bandwidth"));
    d.net.iops = TRY(r.u64("net iops"));
    if (version >= 3) {
      d.balloon.target_pages = TRY(r.u32("balloon target"));
      d.balloon.deflate_on_oom = TRY(r.boolean("balloon deflate_on_oom"));
      d.balloon.stats_interval_s = TRY(r.u32("balloon statistics interval"));
      d.balloon.free_page_reporting = TRY(r.boolean("balloon free_page_reporting"));
      d.vsock.guest_cid = TRY(r.u64("vsock guest CID"));
      d.vsock.uds_path = TRY(r.str("vsock uds_path", kMaxString));
      if (d.kind == DeviceSpec::Kind::kVsock && d.vsock.uds_path.empty())
        return r.bad(cat("device ", i), "is a vsock without a unix socket path");
      if (d.kind == DeviceSpec::Kind::kBalloon && uint64_t{d.balloon.target_pages} * 4096 >= s.memory)
        return r.bad(cat("device ", i, " balloon target"), cat(d.balloon.target_pages, " pages is not below the guest's memory"));
    }
    if (d.kind == DeviceSpec::Kind::kBlock && d.path.empty()) return r.bad(cat("device ", i), "is a disk without a path");
    s.devices.push_back(std::move(d));
  }
  if (version >= 2) {
    s.vmgenid_addr = TRY(r.u64("VM generation ID address"));
    if (s.vmgenid_addr % 8 != 0 || s.vmgenid_addr > s.memory - 16)
      return r.bad("VM generation ID address", cat(s.vmgenid_addr, " is not 8-byte aligned inside guest memory"));
  }
  return s;
}

Result<VcpuState> get_vcpu(ByteReader& r) {
  VcpuState v;
  uint32_t n = TRY(r.count("CPUID entry count", kMaxCpuid, 4 + sizeof(kvm_cpuid_entry2)));
  for (uint32_t i = 0; i < n; ++i) v.cpuid.push_back(TRY(r.blob<kvm_cpuid_entry2>("CPUID entry")));
  v.mp_state = TRY(r.blob<kvm_mp_state>("MP state"));
  v.regs = TRY(r.blob<kvm_regs>("registers"));
  v.sregs = TRY(r.blob<kvm_sregs>("special registers"));
  auto xs = TRY(r.bytes("XSAVE area", kMaxXsave));
  if (!xs.empty() && xs.size() < 4096) return r.bad("XSAVE area", cat("is ", xs.size(), " bytes, less than 4096"));
  v.xsave.assign(xs.begin(), xs.end());
  v.fpu = TRY(r.blob<kvm_fpu>("FPU"));
  v.has_xcrs = TRY(r.boolean("has XCRs"));
  v.xcrs = TRY(r.blob<kvm_xcrs>("XCRs"));
  if (v.xcrs.nr_xcrs > KVM_MAX_XCRS) return r.bad("XCRs", cat("count ", v.xcrs.nr_xcrs, " is more than ", KVM_MAX_XCRS));
  v.debugregs = TRY(r.blob<kvm_debugregs>("debug registers"));
  v.has_lapic = TRY(r.boolean("has LAPIC"));
  v.lapic = TRY(r.blob<kvm_lapic_state>("LAPIC"));
  uint32_t m = TRY(r.count("MSR count", kMaxMsrs, 12));
  for (uint32_t i = 0; i < m; ++i) {
    kvm_msr_entry e{};
    e.index = TRY(r.u32("MSR index"));
    e.data = TRY(r.u64("MSR value"));
    v.msrs.push_back(e);
  }
  v.events = TRY(r.blob<kvm_vcpu_events>("vCPU events"));
  v.tsc_khz = TRY(r.u32("TSC frequency"));
  return v;
}

Result<virtio::QueueState> get_queue(ByteReader& r) {
  virtio::QueueState q;
  q.max_size = TRY(r.u16("queue max size"));
  q.size = TRY(r.u16("queue size"));
  if (q.max_size == 0 || q.size > q.max_size) return r.bad("queue size", cat(q.size, " is not 1 to the maximum ", q.max_size));
  q.ready = TRY(r.boolean("queue ready"));
  q.desc_table = TRY(r.u64("descriptor table"));
  q.avail_ring = TRY(r.u64("available ring"));
  q.used_ring = TRY(r.u64("used ring"));
  q.next_avail = TRY(r.u16("next available"));
  q.next_used = TRY(r.u16("next used"));
  q.signalled_used = TRY(r.u16("signalled used"));
  q.signalled_used_valid = TRY(r.boolean("signalled used valid"));
  q.event_idx = TRY(r.boolean("event idx"));
  q.indirect = TRY(r.boolean("indirect"));
  return q;
}

Result<virtio::BalloonState> get_balloon(ByteReader& r) {
  virtio::BalloonState b;
  b.options.target_pages = TRY(r.u32("balloon target"));
  b.options.deflate_on_oom = TRY(r.boolean("balloon deflate_on_oom"));
  b.options.stats_interval_s = TRY(r.u32("balloon statistics interval"));
  b.options.free_page_reporting = TRY(r.boolean("balloon free_page_reporting"));
  b.actual_pages = TRY(r.u32("balloon actual"));
  for (auto& v : b.stats) {
    bool has = TRY(r.boolean("balloon statistic present"));
    uint64_t x = TRY(r.u64("balloon statistic"));
    if (has) v = x;
  }
  b.stats_buffer_held = TRY(r.boolean("balloon statistics buffer held"));
  b.stats_buffer_head = TRY(r.u16("balloon statistics buffer head"));
  auto& c = b.counters;
  for (uint64_t* x : {&c.inflated_pages, &c.deflated_pages, &c.reported_bytes, &c.invalid_pfns, &c.discard_errors,
                      &c.stats_received, &c.stats_polls})
    *x = TRY(r.u64("balloon counter"));
  return b;
}

Result<DeviceStates> get_devices(ByteReader& r, uint32_t version) {
  DeviceStates d;
  SerialState& s = d.serial;
  for (uint8_t* b : {&s.dll, &s.dlm, &s.ier, &s.lcr, &s.mcr, &s.msr, &s.scr, &s.fcr}) *b = TRY(r.u8("serial register"));
  s.thr_interrupt_pending = TRY(r.boolean("serial THR pending"));
  s.irq_level = TRY(r.boolean("serial IRQ level"));
  for (auto& b : s.rx) b = TRY(r.u8("serial FIFO"));
  s.rx_head = TRY(r.u8("serial FIFO head"));
  s.rx_count = TRY(r.u8("serial FIFO count"));
  if (s.rx_head >= s.rx.size() || s.rx_count > s.rx.size())
    return r.bad("serial FIFO", cat("head ", unsigned{s.rx_head}, " / count ", unsigned{s.rx_count}, " out of range"));
  d.rtc.index = TRY(r.u8("RTC index"));
  for (auto& b : d.rtc.cmos) b = TRY(r.u8("RTC CMOS"));
  if (version >= 4) {
    d.rtc.offset = static_cast<int64_t>(TRY(r.u64("RTC offset")));
    if (d.rtc.offset > kMaxRtcOffset || d.rtc.offset < -kMaxRtcOffset)
      return r.bad("RTC offset", cat(d.rtc.offset, " s is more than ", kMaxRtcOffset, " s from the host's clock"));
  }
  for (uint8_t* b : {&d.i8042.status, &d.i8042.control, &d.i8042.out, &d.i8042.pending_cmd}) *b = TRY(r.u8("i8042 register"));
  for (auto& b : d.i8042.keys) b = TRY(r.u8("i8042 key queue"));
  d.i8042.keys_count = TRY(r.u8("i8042 key count"));
  if (d.i8042.keys_count > d.i8042.keys.size())
    return r.bad("i8042 key count", cat(unsigned{d.i8042.keys_count}, " is more than ", d.i8042.keys.size()));
  d.acpi_pm.status = TRY(r.u8("ACPI PM status"));
  uint32_t n = TRY(r.count("virtio device count", kMaxDevices, 33));
  for (uint32_t i = 0; i < n; ++i) {
    VirtioState v;
    v.device_type = TRY(r.u32("virtio device type"));
    auto& m = v.mmio;
    m.status = TRY(r.u32("virtio status"));
    m.device_features_sel = TRY(r.u32("device features select"));
    m.driver_features_sel = TRY(r.u32("driver features select"));
    m.driver_features = TRY(r.u64("driver features"));
    m.queue_sel = TRY(r.u32("queue select"));
    m.interrupt_status = TRY(r.u32("interrupt status"));
    m.config_generation = TRY(r.u32("config generation"));
    uint32_t q = TRY(r.count("queue count", kMaxQueues, 36));
    for (uint32_t k = 0; k < q; ++k) m.queues.push_back(TRY(get_queue(r)));
    if (TRY(r.boolean("has net state"))) {
      virtio::NetState ns;
      for (auto& b : ns.mac) b = TRY(r.u8("net MAC"));
      v.net = ns;
    }
    if (version >= 3) {
      if (TRY(r.boolean("has balloon state"))) v.balloon = TRY(get_balloon(r));
      if (TRY(r.boolean("has vsock state"))) v.vsock = virtio::VsockState{TRY(r.u64("vsock guest CID"))};
    }
    d.virtio.push_back(std::move(v));
  }
  return d;
}

Result<MemoryInfo> get_memory(ByteReader& r) {
  MemoryInfo m;
  m.diff = TRY(r.boolean("diff"));
  m.size = TRY(r.u64("memory file size"));
  m.path = TRY(r.str("memory file path", kMaxString));
  uint32_t n = TRY(r.count("range count", kMaxRanges, 16));
  uint64_t prev_end = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t off = TRY(r.u64("range offset"));
    uint64_t len = TRY(r.u64("range length"));
    if (off % 4096 || len % 4096 || len == 0 || off < prev_end || off > m.size || len > m.size - off)
      return r.bad(cat("range ", i), cat(off, "+", len, " is not page aligned, sorted and inside ", m.size, " bytes"));
    prev_end = off + len;
    m.ranges.emplace_back(off, len);
  }
  if (!m.diff && n != 0) return r.bad("ranges", "are only for diff snapshots");
  return m;
}

void put_memory(ByteWriter& w, const MemoryInfo& m) {
  w.boolean(m.diff);
  w.u64(m.size);
  w.str(m.path);
  w.u32(static_cast<uint32_t>(m.ranges.size()));
  for (const auto& [off, len] : m.ranges) {
    w.u64(off);
    w.u64(len);
  }
}
}  // namespace

std::vector<uint8_t> encode_state(const SnapshotState& s, const std::string& vessel_version, uint32_t format_version) {
  ByteWriter payload;
  {
    ByteWriter b;
    b.u64(s.id);
    b.u64(s.parent_id);
    section(payload, kTagIds, b);
  }
  {
    ByteWriter b;
    put_spec(b, s.spec, format_version);
    section(payload, kTagSpec, b);
  }
  {
    ByteWriter b;
    b.u32(static_cast<uint32_t>(s.disks.size()));
    for (const auto& d : s.disks) {
      b.str(d.path);
      b.u64(d.size);
      b.u64(static_cast<uint64_t>(d.mtime_ns));
    }
    section(payload, kTagDisk, b);
  }
  {
    ByteWriter b;
    b.boolean(s.vm.irqchip);
    b.blob(s.vm.pic_master);
    b.blob(s.vm.pic_slave);
    b.blob(s.vm.ioapic);
    b.blob(s.vm.pit);
    b.boolean(s.vm.has_clock);
    b.blob(s.vm.clock);
    section(payload, kTagVm, b);
  }
  for (const auto& v : s.vcpus) {
    ByteWriter b;
    put_vcpu(b, v);
    section(payload, kTagVcpu, b);
  }
  {
    ByteWriter b;
    put_devices(b, s.devices, format_version);
    section(payload, kTagDevs, b);
  }
  {
    ByteWriter b;
    put_memory(b, s.memory);
    section(payload, kTagMem, b);
  }
  if (!s.vm_config.empty()) {
    ByteWriter b;
    b.str(s.vm_config);
    section(payload, kTagConf, b);
  }
  ByteWriter f;
  f.raw(kMagic, sizeof kMagic);
  f.u32(format_version);
  f.str(vessel_version);
  f.u64(payload.size());
  f.raw(payload.data().data(), payload.size());
  f.u32(crc32c(f.data()));
  return std::move(f.data());
}

std::vector<uint8_t> encode_spec(const VmSpec& s) {
  ByteWriter w;
  put_spec(w, s, kFormatVersion);
  return std::move(w.data());
}

Result<VmSpec> decode_spec(std::span<const uint8_t> bytes) {
  ByteReader r(bytes, "machine spec");
  VmSpec s = TRY(get_spec(r, kFormatVersion));
  TRY(r.finish());
  return s;
}

Result<SnapshotState> decode_payload(std::span<const uint8_t> payload, uint32_t version) {
  ByteReader r(payload, "snapshot state");
  SnapshotState s;
  bool seen_ids = false, seen_spec = false, seen_disk = false, seen_vm = false, seen_devs = false, seen_mem = false,
       seen_conf = false;
  while (r.left() > 0) {
    uint32_t t = TRY(r.u32("section tag"));
    uint64_t len = TRY(r.u64("section length"));
    if (len > r.left()) return r.bad(cat("section ", tag_name(t)), cat("length ", len, " is past the end (", r.left(), " bytes left)"));
    auto body = TRY(r.bytes_raw(len));
    ByteReader b(body, cat("section ", tag_name(t)));
    auto once = [&](bool& seen) -> Status {
      if (seen) return Error::invalid(cat("snapshot state: section ", tag_name(t), " appears twice"));
      seen = true;
      return ok();
    };
    if (t == kTagIds) {
      TRY(once(seen_ids));
      s.id = TRY(b.u64("snapshot id"));
      s.parent_id = TRY(b.u64("parent id"));
    } else if (t == kTagSpec) {
      TRY(once(seen_spec));
      s.spec = TRY(get_spec(b, version));
    } else if (t == kTagDisk) {
      TRY(once(seen_disk));
      uint32_t n = TRY(b.count("disk count", kMaxDisks, 20));
      for (uint32_t i = 0; i < n; ++i) {
        DiskRecord d;
        d.path = TRY(b.str("disk path", kMaxString));
        d.size = TRY(b.u64("disk size"));
        d.mtime_ns = static_cast<int64_t>(TRY(b.u64("disk mtime")));
        s.disks.push_back(std::move(d));
      }
    } else if (t == kTagVm) {
      TRY(once(seen_vm));
      s.vm.irqchip = TRY(b.boolean("irqchip"));
      s.vm.pic_master = TRY(b.blob<kvm_irqchip>("PIC master"));
      s.vm.pic_slave = TRY(b.blob<kvm_irqchip>("PIC slave"));
      s.vm.ioapic = TRY(b.blob<kvm_irqchip>("IOAPIC"));
      s.vm.pit = TRY(b.blob<kvm_pit_state2>("PIT"));
      s.vm.has_clock = TRY(b.boolean("has clock"));
      s.vm.clock = TRY(b.blob<kvm_clock_data>("kvmclock"));
    } else if (t == kTagVcpu) {
      if (s.vcpus.size() >= 254) return Error::invalid("snapshot state: more than 254 VCPU sections");
      b = ByteReader(body, cat("section VCPU ", s.vcpus.size()));
      s.vcpus.push_back(TRY(get_vcpu(b)));
    } else if (t == kTagDevs) {
      TRY(once(seen_devs));
      s.devices = TRY(get_devices(b, version));
    } else if (t == kTagMem) {
      TRY(once(seen_mem));
      s.memory = TRY(get_memory(b));
    } else if (t == kTagConf) {
      TRY(once(seen_conf));
      s.vm_config = TRY(b.str("VM config", kMaxConfig));
    } else {
      return Error::invalid(cat("snapshot state: unknown section '", tag_name(t), "'"));
    }
    TRY(b.finish());
  }
  const char* missing = !seen_ids ? "IDS" : !seen_spec ? "SPEC" : !seen_disk ? "DISK" : !seen_vm ? "VMST"
                        : !seen_devs ? "DEVS" : !seen_mem ? "MEMF" : nullptr;
  if (missing) return Error::invalid(cat("snapshot state: section ", missing, " is missing"));
  if (s.vcpus.size() != s.spec.cpus)
    return Error::invalid(cat("snapshot state: ", s.vcpus.size(), " VCPU sections for a machine of ", s.spec.cpus, " vCPUs"));
  if (s.devices.virtio.size() != s.spec.devices.size())
    return Error::invalid(cat("snapshot state: ", s.devices.virtio.size(), " virtio device states for ", s.spec.devices.size(), " devices"));
  if (s.memory.size != s.spec.memory)
    return Error::invalid(cat("snapshot state: memory file of ", s.memory.size, " bytes for ", s.spec.memory, " bytes of RAM"));
  if (s.vm.irqchip != s.spec.irqchip) return Error::invalid("snapshot state: irqchip state does not match the machine");
  if (s.memory.diff && s.parent_id == 0) return Error::invalid("snapshot state: a diff snapshot without a parent");
  return s;
}

Result<SnapshotState> decode_state(std::span<const uint8_t> file) {
  ByteReader r(file, "snapshot state file");
  if (file.size() < sizeof kMagic || std::memcmp(file.data(), kMagic, sizeof kMagic) != 0)
    return Error::invalid("not a vessel snapshot state file (bad magic)");
  TRY(r.bytes_raw(sizeof kMagic));
  uint32_t version = TRY(r.u32("format version"));
  std::string writer = TRY(r.str("vessel version", 256));
  if (version < kMinFormatVersion || version > kFormatVersion)
    return Error::invalid(cat("snapshot format version ", version, " (written by vessel ", writer,
                              "): this vessel reads versions ", kMinFormatVersion, " to ", kFormatVersion));
  uint64_t len = TRY(r.u64("payload length"));
  if (len > kMaxStateFile || len + 4 != r.left())
    return Error::invalid(cat("snapshot state file is truncated or has extra bytes: ", len + 4,
                              " bytes of payload and checksum expected, ", r.left(), " present"));
  size_t payload_at = file.size() - r.left();
  uint32_t want;
  std::memcpy(&want, file.data() + file.size() - 4, 4);
  uint32_t got = crc32c(file.first(file.size() - 4));
  if (want != got) return Error::invalid("snapshot state file is corrupted (CRC-32C checksum mismatch)");
  auto s = TRY(decode_payload(file.subspan(payload_at, len), version));
  s.vessel_version = writer;
  return s;
}

Status rehearse_state_codec(const VmSpec& spec) {
  SnapshotState s;
  s.spec = spec;
  s.vm.irqchip = spec.irqchip;
  s.memory.size = spec.memory;
  s.vcpus.resize(spec.cpus);
  for (auto& v : s.vcpus) {
    v.cpuid.resize(64);   // about what KVM gives a vCPU
    v.xsave.resize(4096);
    v.msrs.resize(64);
  }
  s.devices.virtio.resize(spec.devices.size());
  (void)TRYC(decode_state(encode_state(s, "rehearsal")), "rehearse the state codec");
  return ok();
}

Result<SnapshotState> read_state_file(const std::string& path) {
  UniqueFd fd = TRY(open_file(path, O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Error::from_errno(cat("stat ", path));
  if (!S_ISREG(st.st_mode)) return Error::invalid(cat(path, " is not a regular file"));
  if (static_cast<uint64_t>(st.st_size) > kMaxStateFile)
    return Error::invalid(cat(path, ": ", st.st_size, " bytes is too large for a snapshot state file"));
  std::vector<uint8_t> buf(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::from_errno(cat("read ", path));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  buf.resize(got);
  return TRYC(decode_state(buf), path);
}

Status write_state_file(const std::string& path, const SnapshotState& s, const std::string& vessel_version) {
  auto bytes = encode_state(s, vessel_version);
  return write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), 0600);
}

}  // namespace vessel::vmm::snapshot
