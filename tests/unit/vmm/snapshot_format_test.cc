// Snapshot files without KVM: the state file format (round trip, every
// truncation, corruption, version and bounds), the host CPU check, memory
// files (sparse writing, diff ranges, merge) over a plain memfd GuestMemory.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/crc32c.h"
#include "unit/corpus.h"
#include "vmm/snapshot/cpu_check.h"
#include "vmm/snapshot/memory_file.h"
#include "vmm/snapshot/state_file.h"

namespace vessel::vmm::snapshot {
namespace {

namespace fs = std::filesystem;

// A state with a bit of everything: 2 vCPUs, 2 devices, a diff range list.
SnapshotState sample(bool diff = false) {
  SnapshotState s;
  s.id = 42;
  s.parent_id = diff ? 7 : 0;
  s.spec.cpus = 2;
  s.spec.memory = 64ULL << 20;
  DeviceSpec blk;
  blk.kind = DeviceSpec::Kind::kBlock;
  blk.path = "/images/root.raw";
  blk.block.serial = "root";
  blk.block.readonly = true;
  DeviceSpec net;
  net.kind = DeviceSpec::Kind::kNet;
  net.net.tap = "tap0";
  net.net.mac = {0x52, 0x54, 0, 1, 2, 3};
  net.net.mac_set = true;
  s.spec.devices = {blk, net};
  s.spec.vmgenid_addr = 0xff000;
  s.disks.push_back({"/images/root.raw", 1 << 20, 1234567890123});
  s.vm.irqchip = true;
  s.vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  s.vm.pit.channels[0].count = 0x1234;
  s.vm.has_clock = true;
  s.vm.clock.clock = 987654321;
  for (int i = 0; i < 2; ++i) {
    VcpuState v;
    kvm_cpuid_entry2 e{};
    e.function = 1;
    e.ecx = 0x1234;
    v.cpuid = {e};
    v.regs.rip = 0x100000 + i;
    v.regs.rax = 0xabcdef;
    v.sregs.cr0 = 0x80000011;
    v.xsave.assign(4096, static_cast<uint8_t>(i));
    v.has_xcrs = true;
    v.xcrs.nr_xcrs = 1;
    v.has_lapic = true;
    v.lapic.regs[0x20] = static_cast<char>(i);
    v.msrs = {{0x10, 0, 5555}, {0xc0000080, 0, 0x500}};
    v.tsc_khz = 2000000;
    v.mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
    s.vcpus.push_back(v);
  }
  s.devices.serial.ier = 3;
  s.devices.serial.rx_count = 2;
  s.devices.rtc.cmos[0x10] = 7;
  s.devices.rtc.offset = -86400;  // the guest set its clock a day back
  s.devices.i8042.control = 0x45;
  s.devices.acpi_pm.status = 0x80;
  VirtioState b;
  b.device_type = 2;
  b.mmio.status = 0xf;
  b.mmio.driver_features = 1ULL << 32;
  virtio::QueueState q;
  q.size = 128;
  q.ready = true;
  q.desc_table = 0x10000;
  q.next_avail = 5;
  b.mmio.queues = {q};
  VirtioState n;
  n.device_type = 1;
  n.mmio.queues = {q, q};
  n.net = virtio::NetState{{0x52, 0x54, 0, 1, 2, 3}};
  s.devices.virtio = {b, n};
  s.memory.size = 64ULL << 20;
  s.memory.path = "/snap/memory";
  s.memory.diff = diff;
  if (diff) s.memory.ranges = {{0, 4096}, {0x10000, 8192}};
  s.vm_config = R"({"machine-config":{"vcpu_count":2}})";
  return s;
}

TEST(SnapshotStateFile, RoundTripKeepsEveryField) {
  SnapshotState s = sample(true);
  auto bytes = encode_state(s, "9.9.9");
  auto d = decode_state(bytes);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->vessel_version, "9.9.9");
  EXPECT_EQ(d->id, 42u);
  EXPECT_EQ(d->parent_id, 7u);
  EXPECT_EQ(d->spec.cpus, 2u);
  ASSERT_EQ(d->spec.devices.size(), 2u);
  EXPECT_EQ(d->spec.devices[0].path, "/images/root.raw");
  EXPECT_TRUE(d->spec.devices[0].block.readonly);
  EXPECT_EQ(d->spec.devices[1].net.tap, "tap0");
  EXPECT_EQ(d->spec.devices[1].net.mac[5], 3);
  EXPECT_EQ(d->spec.vmgenid_addr, 0xff000u);
  ASSERT_EQ(d->disks.size(), 1u);
  EXPECT_EQ(d->disks[0].mtime_ns, 1234567890123);
  EXPECT_EQ(d->vm.pit.channels[0].count, 0x1234u);
  EXPECT_EQ(d->vm.clock.clock, 987654321u);
  ASSERT_EQ(d->vcpus.size(), 2u);
  EXPECT_EQ(d->vcpus[1].regs.rip, 0x100001u);
  EXPECT_EQ(d->vcpus[1].xsave[100], 1);
  EXPECT_EQ(d->vcpus[0].msrs[1].data, 0x500u);
  EXPECT_EQ(d->vcpus[1].lapic.regs[0x20], 1);
  EXPECT_EQ(d->vcpus[0].cpuid[0].ecx, 0x1234u);
  EXPECT_EQ(d->devices.serial.ier, 3);
  EXPECT_EQ(d->devices.rtc.cmos[0x10], 7);
  EXPECT_EQ(d->devices.rtc.offset, -86400);
  EXPECT_EQ(d->devices.i8042.control, 0x45);
  ASSERT_EQ(d->devices.virtio.size(), 2u);
  EXPECT_EQ(d->devices.virtio[0].mmio.queues[0].next_avail, 5);
  ASSERT_TRUE(d->devices.virtio[1].net);
  EXPECT_EQ(d->memory.ranges.size(), 2u);
  EXPECT_EQ(d->memory.ranges[1].second, 8192u);
  EXPECT_EQ(d->vm_config, R"({"machine-config":{"vcpu_count":2}})");
}

TEST(SnapshotStateFile, EveryTruncationIsAnError) {
  auto bytes = encode_state(sample(), "1");
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto d = decode_state(std::span<const uint8_t>(bytes.data(), n));
    ASSERT_FALSE(d) << "a state file cut at " << n << " bytes was accepted";
  }
  auto d = decode_state(std::span<const uint8_t>(bytes.data(), bytes.size() - 10));
  EXPECT_NE(d.error().message().find("truncated"), std::string::npos) << d.error().message();
}

TEST(SnapshotStateFile, EveryFlippedByteIsAnError) {
  auto bytes = encode_state(sample(), "1");
  for (size_t i = 0; i < bytes.size(); i += 7) {
    auto copy = bytes;
    copy[i] ^= 0x01;
    auto d = decode_state(copy);
    ASSERT_FALSE(d) << "a flipped byte at " << i << " was accepted";
  }
  auto copy = bytes;
  copy[bytes.size() / 2] ^= 0xff;
  auto d = decode_state(copy);
  EXPECT_NE(d.error().message().find("corrupted"), std::string::npos) << d.error().message();
}

TEST(SnapshotStateFile, ForeignVersionAndMagicAreNamed) {
  auto bytes = encode_state(sample(), "0.1.0");
  bytes[8] = static_cast<uint8_t>(kFormatVersion + 1);
  auto d = decode_state(bytes);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("format version " + std::to_string(kFormatVersion + 1) + " (written by vessel 0.1.0)"),
            std::string::npos)
      << d.error().message();
  EXPECT_NE(d.error().message().find("reads versions 1 to " + std::to_string(kFormatVersion)), std::string::npos)
      << d.error().message();
  bytes[0] = 'X';
  d = decode_state(bytes);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("not a vessel snapshot"), std::string::npos) << d.error().message();
}

// Encodes with a bad field, then re-checksums, so the parser (not the CRC) must catch it.
std::vector<uint8_t> with_fixed_crc(std::vector<uint8_t> b) {
  uint32_t c = crc32c(std::span<const uint8_t>(b.data(), b.size() - 4));
  std::memcpy(b.data() + b.size() - 4, &c, 4);
  return b;
}

// Re-checksums a file whose header now claims format `version`.
std::vector<uint8_t> claiming_version(std::vector<uint8_t> bytes, uint32_t version) {
  std::memcpy(bytes.data() + sizeof kMagic, &version, 4);
  return with_fixed_crc(std::move(bytes));
}

// A version 1 file (before the VM generation ID) and a version 2 file (before
// balloon and vsock) are still read; their bytes claiming a newer version are
// short of what it added, refused by name.
TEST(SnapshotStateFile, Version1And2FilesAreStillRead) {
  auto v1 = encode_state(sample(), "0.1.0", 1);
  auto d = decode_state(v1);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->spec.vmgenid_addr, 0u);
  EXPECT_EQ(d->spec.devices.size(), 2u);
  d = decode_state(claiming_version(v1, 2));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("VM generation ID address"), std::string::npos) << d.error().message();

  auto v2 = encode_state(sample(), "0.2.0", 2);
  d = decode_state(v2);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->spec.vmgenid_addr, 0xff000u);
  EXPECT_EQ(d->spec.devices[1].net.tap, "tap0");
  d = decode_state(claiming_version(v2, 3));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("section SPEC"), std::string::npos) << d.error().message();
}

// A version 3 file (before the RTC offset) is read with the RTC on the host's
// time; its bytes claiming version 4 are short of the offset, refused by name.
// An offset beyond what the RTC can express is refused.
TEST(SnapshotStateFile, Version3FilesAreStillReadAndTheRtcOffsetIsBounded) {
  auto v3 = encode_state(sample(), "0.3.0", 3);
  auto d = decode_state(v3);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->devices.rtc.offset, 0);
  EXPECT_EQ(d->devices.rtc.cmos[0x10], 7);
  d = decode_state(claiming_version(v3, 4));
  ASSERT_FALSE(d);

  SnapshotState far = sample();
  far.devices.rtc.offset = kMaxRtcOffset + 1;
  d = decode_state(encode_state(far, "0.4.0"));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("RTC offset"), std::string::npos) << d.error().message();
  far.devices.rtc.offset = -kMaxRtcOffset;
  d = decode_state(encode_state(far, "0.4.0"));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->devices.rtc.offset, -kMaxRtcOffset);
}

// Balloon and vsock devices (format 3): options in SPEC, state in DEVS.
TEST(SnapshotStateFile, BalloonAndVsockRoundTrip) {
  SnapshotState s = sample();
  DeviceSpec bal;
  bal.kind = DeviceSpec::Kind::kBalloon;
  bal.balloon = {.target_pages = 4096, .deflate_on_oom = true, .stats_interval_s = 2, .free_page_reporting = true};
  DeviceSpec vs;
  vs.kind = DeviceSpec::Kind::kVsock;
  vs.vsock = {.guest_cid = 52, .uds_path = "/run/v.sock"};
  s.spec.devices.push_back(bal);
  s.spec.devices.push_back(vs);
  VirtioState bst;
  bst.device_type = virtio::kTypeBalloon;
  virtio::BalloonState b;
  b.options = bal.balloon;
  b.actual_pages = 1000;
  b.stats[static_cast<size_t>(virtio::BalloonStat::kFreeMemory)] = 123456789;
  b.stats_buffer_held = true;
  b.stats_buffer_head = 7;
  b.counters.inflated_pages = 1000;
  b.counters.stats_polls = 3;
  bst.balloon = b;
  VirtioState vst;
  vst.device_type = virtio::vsock::kTypeVsock;
  vst.vsock = virtio::VsockState{52};
  s.devices.virtio.push_back(bst);
  s.devices.virtio.push_back(vst);
  auto bytes = encode_state(s, "1");
  auto d = decode_state(bytes);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->spec.devices.size(), 4u);
  EXPECT_EQ(d->spec.devices[2].kind, DeviceSpec::Kind::kBalloon);
  EXPECT_EQ(d->spec.devices[2].balloon.target_pages, 4096u);
  EXPECT_TRUE(d->spec.devices[2].balloon.deflate_on_oom);
  EXPECT_TRUE(d->spec.devices[2].balloon.free_page_reporting);
  EXPECT_EQ(d->spec.devices[2].balloon.stats_interval_s, 2u);
  EXPECT_EQ(d->spec.devices[3].kind, DeviceSpec::Kind::kVsock);
  EXPECT_EQ(d->spec.devices[3].vsock.guest_cid, 52u);
  EXPECT_EQ(d->spec.devices[3].vsock.uds_path, "/run/v.sock");
  ASSERT_TRUE(d->devices.virtio[2].balloon);
  const auto& rb = *d->devices.virtio[2].balloon;
  EXPECT_EQ(rb.actual_pages, 1000u);
  EXPECT_EQ(rb.stats[static_cast<size_t>(virtio::BalloonStat::kFreeMemory)], 123456789u);
  EXPECT_FALSE(rb.stats[0].has_value());
  EXPECT_TRUE(rb.stats_buffer_held);
  EXPECT_EQ(rb.stats_buffer_head, 7);
  EXPECT_EQ(rb.counters.inflated_pages, 1000u);
  EXPECT_EQ(rb.counters.stats_polls, 3u);
  ASSERT_TRUE(d->devices.virtio[3].vsock);
  EXPECT_EQ(d->devices.virtio[3].vsock->guest_cid, 52u);
  EXPECT_FALSE(d->devices.virtio[3].balloon);

  // A vsock without its socket path, a balloon as big as the guest: refused by name.
  SnapshotState bad = s;
  bad.spec.devices[3].vsock.uds_path.clear();
  d = decode_state(encode_state(bad, "1"));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("vsock without a unix socket path"), std::string::npos) << d.error().message();
  bad = s;
  bad.spec.devices[2].balloon.target_pages = 64 << 8;  // 64 MiB of 4 KiB pages: all of it
  d = decode_state(encode_state(bad, "1"));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("balloon target"), std::string::npos) << d.error().message();
}

TEST(SnapshotStateFile, InconsistentContentIsRefusedByName) {
  SnapshotState s = sample();
  s.vcpus.pop_back();
  auto d = decode_state(with_fixed_crc(encode_state(s, "1")));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("1 VCPU sections for a machine of 2 vCPUs"), std::string::npos) << d.error().message();

  s = sample();
  s.memory.size = 4096;
  d = decode_state(with_fixed_crc(encode_state(s, "1")));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("memory file of 4096 bytes"), std::string::npos) << d.error().message();

  s = sample(true);
  s.memory.ranges = {{0x10000, 4096}, {0, 4096}};  // not sorted
  d = decode_state(with_fixed_crc(encode_state(s, "1")));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("range 1"), std::string::npos) << d.error().message();

  s = sample();
  s.spec.cpus = 0;
  s.vcpus.clear();
  d = decode_state(with_fixed_crc(encode_state(s, "1")));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("vCPU count"), std::string::npos) << d.error().message();
}

TEST(SnapshotStateFile, HugeCountsFailWithoutAllocating) {
  auto bytes = encode_state(sample(), "1");
  // The device count of SPEC sits after cpus (4) + memory (8) + irqchip (1) of the section body.
  const uint8_t spec_tag[4] = {'S', 'P', 'E', 'C'};
  auto it = std::search(bytes.begin(), bytes.end(), spec_tag, spec_tag + 4);
  ASSERT_NE(it, bytes.end());
  size_t at = static_cast<size_t>(it - bytes.begin()) + 4 + 8 + 13;
  uint32_t huge = 0xffffffff;
  std::memcpy(bytes.data() + at, &huge, 4);
  auto d = decode_state(with_fixed_crc(bytes));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("device count"), std::string::npos) << d.error().message();
}

TEST(SnapshotStateFile, SeedCorpusParsesOrFailsCleanly) {
  auto seeds = vessel::testing::corpus_files("snapshot");
  EXPECT_FALSE(seeds.empty()) << "tests/fuzz/corpus/snapshot/ has no seeds";
  for (const auto& [name, data] : seeds) {
    std::span<const uint8_t> b(reinterpret_cast<const uint8_t*>(data.data()), data.size());
    (void)decode_state(b);
    (void)decode_payload(b);
    // The seeds past the fuzz target's mode byte: the valid ones must stay valid with the format.
    auto body = b.subspan(b.empty() ? 0 : 1);
    if (name.rfind("full-", 0) == 0 || name.rfind("diff-", 0) == 0) {
      auto d = decode_state(body);
      EXPECT_TRUE(d) << name << ": " << (d ? "" : d.error().message());
    }
    if (name.rfind("payload-", 0) == 0) {
      auto d = decode_payload(body);
      EXPECT_TRUE(d) << name << ": " << (d ? "" : d.error().message());
    }
  }
}

TEST(Crc32c, KnownVectors) {
  const char* s = "123456789";
  EXPECT_EQ(crc32c(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s), 9)), 0xe3069283u);
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(crc32c(zeros), 0x8a9136aau);
  // Incremental = one shot.
  auto a = crc32c(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s), 4));
  EXPECT_EQ(crc32c(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s) + 4, 5), a), 0xe3069283u);
}

kvm_cpuid_entry2 leaf(uint32_t fn, uint32_t idx, uint32_t ebx, uint32_t ecx, uint32_t edx) {
  kvm_cpuid_entry2 e{};
  e.function = fn;
  e.index = idx;
  e.ebx = ebx;
  e.ecx = ecx;
  e.edx = edx;
  return e;
}

TEST(SnapshotCpuCheck, MissingFeatureIsNamed) {
  std::vector<kvm_cpuid_entry2> host = {leaf(1, 0, 0, 0x1, 0x06000000), leaf(7, 0, 0x1, 0, 0)};
  std::vector<kvm_cpuid_entry2> same = host;
  EXPECT_TRUE(check_cpuid(same, host));
  // Bits KVM sets per vCPU (hypervisor, OSXSAVE) are not host features.
  std::vector<kvm_cpuid_entry2> dynamic = {leaf(1, 0, 0xffffffff, 0x1 | (1u << 31) | (1u << 27), 0x06000000)};
  EXPECT_TRUE(check_cpuid(dynamic, host));
  std::vector<kvm_cpuid_entry2> avx2 = {leaf(7, 0, 0x1 | (1u << 5), 0, 0)};
  auto s = check_cpuid(avx2, host);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("CPUID leaf 0x7.0 ebx bit 5 (avx2)"), std::string::npos) << s.error().message();
}

TEST(SnapshotMemoryFile, FullFileIsSparseAndMapsBack) {
  auto mem = GuestMemory::create(32ULL << 20, 3ULL << 30, 4ULL << 30);
  ASSERT_TRUE(mem);
  std::string dir = fs::temp_directory_path() / ("snapshot-unit-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (uint64_t a : {0x0ULL, 0x5000ULL, 0x1fff000ULL}) ASSERT_TRUE(mem->write_obj<uint64_t>(a + 8, a + 1));
  ASSERT_TRUE(mem->fill(0x100000, 0, 1 << 20));  // touched but zero: stays a hole
  auto st = write_full_memory(*mem, dir + "/memory");
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->written, 3 * 4096u);
  struct stat sb {};
  ASSERT_EQ(::stat((dir + "/memory").c_str(), &sb), 0);
  EXPECT_EQ(static_cast<uint64_t>(sb.st_size), 32ULL << 20);
  EXPECT_LE(static_cast<uint64_t>(sb.st_blocks) * 512, 64u << 10);

  auto fd = ::open((dir + "/memory").c_str(), O_RDONLY | O_CLOEXEC);
  auto mapped = GuestMemory::map_file(UniqueFd(fd), 32ULL << 20, 3ULL << 30, 4ULL << 30, true);
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(*mapped->read_obj<uint64_t>(0x5008), 0x5001u);
  EXPECT_EQ(*mapped->read_obj<uint64_t>(0x1fff008), 0x1fff001u);
  // Copy-on-write: the file does not change.
  ASSERT_TRUE(mapped->write_obj<uint64_t>(0x9000, 77));
  auto ranges = mapped->populated_ranges();
  ASSERT_TRUE(ranges);
  bool has_written = false;
  for (auto [o, l] : *ranges) has_written |= o <= 0x9000 && 0x9000 < o + l;
  EXPECT_TRUE(has_written) << "a page written through the private mapping is not listed";
  auto again = write_full_memory(*mapped, dir + "/memory2");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->written, 4 * 4096u);

  fd = ::open((dir + "/memory").c_str(), O_RDONLY | O_CLOEXEC);
  auto wrong = GuestMemory::map_file(UniqueFd(fd), 64ULL << 20, 3ULL << 30, 4ULL << 30, false);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("is 33554432 bytes, the guest has 67108864"), std::string::npos)
      << wrong.error().message();
  fs::remove_all(dir);
}

TEST(SnapshotMemoryFile, DiffRangesAndMerge) {
  std::vector<uint64_t> bits = {0b1011, 0, 1ULL << 63};
  auto r = bitmap_ranges(bits, 192);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0], std::make_pair(uint64_t{0}, uint64_t{8192}));
  EXPECT_EQ(r[1], std::make_pair(uint64_t{3 * 4096}, uint64_t{4096}));
  EXPECT_EQ(r[2], std::make_pair(uint64_t{191 * 4096}, uint64_t{4096}));

  std::string dir = fs::temp_directory_path() / ("snapshot-merge-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto mem = GuestMemory::create(1 << 20, 3ULL << 30, 4ULL << 30);
  ASSERT_TRUE(mem);
  mem->enable_dirty_tracking();
  ASSERT_TRUE(mem->write_obj<uint64_t>(0x1000, 1));
  ASSERT_TRUE(mem->write_obj<uint64_t>(0x2000, 2));
  ASSERT_TRUE(write_full_memory(*mem, dir + "/base"));
  (void)mem->take_dirty();
  ASSERT_TRUE(mem->write_obj<uint64_t>(0x2000, 0));  // dirty and now zero: the merge must clear it
  ASSERT_TRUE(mem->write_obj<uint64_t>(0x8000, 8));
  auto dirty = mem->take_dirty();
  auto ranges = bitmap_ranges(dirty, 256);
  ASSERT_EQ(ranges.size(), 2u);
  ASSERT_TRUE(write_diff_memory(*mem, ranges, dir + "/diff"));
  auto m = merge_memory(dir + "/base", dir + "/diff", ranges, 1 << 20, dir + "/merged");
  ASSERT_TRUE(m) << m.error().message();
  auto fd = ::open((dir + "/merged").c_str(), O_RDONLY | O_CLOEXEC);
  auto merged = GuestMemory::map_file(UniqueFd(fd), 1 << 20, 3ULL << 30, 4ULL << 30, false);
  ASSERT_TRUE(merged);
  EXPECT_EQ(*merged->read_obj<uint64_t>(0x1000), 1u);
  EXPECT_EQ(*merged->read_obj<uint64_t>(0x2000), 0u);
  EXPECT_EQ(*merged->read_obj<uint64_t>(0x8000), 8u);
  auto bad = merge_memory(dir + "/base", dir + "/diff", ranges, 2 << 20, dir + "/merged2");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("is 1048576 bytes"), std::string::npos) << bad.error().message();
  EXPECT_FALSE(fs::exists(dir + "/merged2"));
  fs::remove_all(dir);
}

// A migration rehearses the codec on a state of its machine's shape before
// the downtime (rehearse_state_codec): that must go through for every kind of
// device and machine, and a spec no state file can hold is an error, not a pass.
TEST(SnapshotStateFile, RehearsalRoundTripsAStateOfTheMachinesShape) {
  VmSpec spec = sample().spec;
  for (auto kind : {DeviceSpec::Kind::kRng, DeviceSpec::Kind::kBalloon, DeviceSpec::Kind::kVsock}) {
    DeviceSpec d;
    d.kind = kind;
    if (kind == DeviceSpec::Kind::kVsock) d.vsock = {.guest_cid = 3, .uds_path = "/run/v.sock"};
    spec.devices.push_back(d);
  }
  EXPECT_TRUE(rehearse_state_codec(spec)) << rehearse_state_codec(spec).error().message();
  spec.irqchip = false;
  spec.cpus = 1;
  spec.devices.clear();
  EXPECT_TRUE(rehearse_state_codec(spec));
  spec.cpus = 0;
  auto bad = rehearse_state_codec(spec);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("rehearse the state codec"), std::string::npos) << bad.error().message();
}

}  // namespace
}  // namespace vessel::vmm::snapshot
