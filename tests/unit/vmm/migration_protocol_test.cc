// The live migration stream (vmm/migration/protocol.h, transport.h) without
// KVM: frames, HELLO, page runs with zero-page bits, the receiver's checks of
// order, bounds and CRCs, and frames (with an fd) over a socketpair.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <filesystem>

#include "common/strings.h"
#include "vmm/migration/protocol.h"
#include "vmm/migration/transport.h"
#include "vmm/snapshot/state_file.h"

namespace vessel::vmm::migration {
namespace {

constexpr uint64_t kMem = 1 << 20;  // 256 pages

class BufferSink : public MemorySink {
 public:
  explicit BufferSink(uint64_t size) : mem(size, 0xee) {}
  Status write_page(uint64_t offset, const uint8_t* data) override {
    std::memcpy(mem.data() + offset, data, kPageSize);
    ++writes;
    return ok();
  }
  Status zero_pages(uint64_t offset, uint64_t count) override {
    std::memset(mem.data() + offset, 0, count * kPageSize);
    zeroed += count;
    return ok();
  }
  std::vector<uint8_t> mem;
  uint64_t writes = 0, zeroed = 0;
};

Hello sample_hello() {
  Hello h;
  h.vessel_version = "9.9.9";
  h.memory_size = kMem;
  h.cpus = 1;
  kvm_cpuid_entry2 e{};
  e.function = 1;
  e.ecx = 0x80000000;
  h.host_cpuid = {e};
  return h;
}

snapshot::SnapshotState sample_state() {
  snapshot::SnapshotState s;
  s.id = 1;
  s.spec.cpus = 1;
  s.spec.memory = kMem;
  s.spec.irqchip = false;
  snapshot::VcpuState v;
  v.regs.rip = 0x1000;
  v.mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
  s.vcpus.push_back(v);
  // One device, as in the MACHINE of these tests (a STATE's devices must be the MACHINE's).
  snapshot::DeviceSpec rng;
  rng.kind = snapshot::DeviceSpec::Kind::kRng;
  s.spec.devices.push_back(rng);
  snapshot::VirtioState vs;
  vs.device_type = 4;
  s.devices.virtio.push_back(vs);
  s.memory.size = kMem;
  return s;
}

// Splits an encoded frame back into header and payload, and feeds it.
Status feed(StreamReceiver& r, const std::vector<uint8_t>& frame, bool fd = false) {
  auto h = TRY(decode_frame_header(std::span(frame).first(kFrameHeaderSize)));
  auto payload = std::span(frame).subspan(kFrameHeaderSize, h.length);
  uint32_t crc;
  std::memcpy(&crc, frame.data() + kFrameHeaderSize + h.length, 4);
  TRY(check_frame_crc(std::span(frame).first(kFrameHeaderSize), payload, crc));
  return r.on_frame(h, payload, fd);
}

snapshot::VmSpec sample_spec() { return sample_state().spec; }

std::vector<uint8_t> machine_frame(const snapshot::VmSpec& s = sample_spec()) {
  return encode_frame(FrameType::kMachine, snapshot::encode_spec(s));
}

std::vector<uint8_t> pages_frame(uint64_t offset, uint32_t count, const std::vector<std::vector<uint8_t>>& pages) {
  return encode_frame(FrameType::kPages, encode_pages(offset, count, [&](uint32_t i) -> const uint8_t* {
                        return i < pages.size() && !pages[i].empty() ? pages[i].data() : nullptr;
                      }));
}

TEST(MigrationFrame, RoundTripAndCorruption) {
  std::vector<uint8_t> payload = {1, 2, 3, 4, 5};
  auto f = encode_frame(FrameType::kError, payload);
  ASSERT_EQ(f.size(), kFrameHeaderSize + 5 + 4);
  auto h = decode_frame_header(std::span(f).first(kFrameHeaderSize));
  ASSERT_TRUE(h) << h.error().message();
  EXPECT_EQ(h->type, FrameType::kError);
  EXPECT_EQ(h->length, 5u);
  uint32_t crc;
  std::memcpy(&crc, f.data() + f.size() - 4, 4);
  EXPECT_TRUE(check_frame_crc(std::span(f).first(16), std::span(f).subspan(16, 5), crc));
  for (size_t i = 0; i < f.size() - 4; ++i) {
    auto g = f;
    g[i] ^= 0x40;
    auto gh = decode_frame_header(std::span(g).first(16));
    if (!gh) continue;  // a header check caught it
    EXPECT_FALSE(check_frame_crc(std::span(g).first(16), std::span(g).subspan(16, 5), crc)) << "byte " << i;
  }
}

TEST(MigrationFrame, UnknownTypeReservedAndOversizeAreRefused) {
  auto f = encode_frame(FrameType::kEnd, {});
  f[0] = 99;
  auto h = decode_frame_header(std::span(f).first(16));
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message().find("unknown frame type 99"), std::string::npos) << h.error().message();
  f = encode_frame(FrameType::kEnd, {});
  f[4] = 1;
  EXPECT_FALSE(decode_frame_header(std::span(f).first(16)));
  f = encode_frame(FrameType::kPages, {});
  uint64_t huge = 1ULL << 40;
  std::memcpy(f.data() + 8, &huge, 8);
  h = decode_frame_header(std::span(f).first(16));
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message().find("exceeds its bound"), std::string::npos);
}

TEST(MigrationHello, RoundTripAndVersionCheck) {
  Hello h = sample_hello();
  h.memfd = true;
  auto d = decode_hello(encode_hello(h));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->memory_size, kMem);
  EXPECT_EQ(d->vessel_version, "9.9.9");
  EXPECT_TRUE(d->memfd);
  ASSERT_EQ(d->host_cpuid.size(), 1u);
  EXPECT_EQ(d->host_cpuid[0].ecx, 0x80000000u);

  h.version = kStreamVersion + 1;
  d = decode_hello(encode_hello(h));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find(cat("stream version ", kStreamVersion + 1, " (from vessel 9.9.9)")), std::string::npos)
      << d.error().message();
  h.version = 1;  // a vessel from before MACHINE and READY
  d = decode_hello(encode_hello(h));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find(cat("stream version 1 (from vessel 9.9.9) is not one this vessel takes (",
                                         kMinStreamVersion, " to ", kStreamVersion, ")")),
            std::string::npos)
      << d.error().message();
  h.version = kMinStreamVersion;  // an older vessel's vm upgrade to this one
  d = decode_hello(encode_hello(h));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->version, kMinStreamVersion);

  auto b = encode_hello(sample_hello());
  b[0] = 'X';
  d = decode_hello(b);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("bad magic"), std::string::npos);

  for (uint64_t bad : {uint64_t{0}, uint64_t{4095}, uint64_t{1} << 41}) {
    Hello x = sample_hello();
    x.memory_size = bad;
    EXPECT_FALSE(decode_hello(encode_hello(x))) << bad;
  }
  auto t = encode_hello(sample_hello());
  for (size_t n = 0; n < t.size(); ++n) EXPECT_FALSE(decode_hello(std::span(t).first(n))) << n;
  t.push_back(0);
  EXPECT_FALSE(decode_hello(t));
}

TEST(MigrationPages, ZeroPagesTravelAsBits) {
  std::vector<uint8_t> a(kPageSize, 0x11), z(kPageSize, 0), c(kPageSize, 0x33);
  auto payload = encode_pages(8 * kPageSize, 3, [&](uint32_t i) { return i == 0 ? a.data() : i == 1 ? z.data() : c.data(); });
  EXPECT_EQ(payload.size(), 12u + 2 + 2 * kPageSize);  // the zero page costs two bits
  BufferSink sink(kMem);
  auto n = apply_pages(payload, kMem, sink);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->data, 2u);
  EXPECT_EQ(n->zero, 1u);
  EXPECT_EQ(sink.mem[8 * kPageSize], 0x11);
  EXPECT_EQ(sink.mem[9 * kPageSize + 100], 0);
  EXPECT_EQ(sink.mem[10 * kPageSize + 4095], 0x33);
  EXPECT_EQ(sink.mem[11 * kPageSize], 0xee);  // untouched
  EXPECT_EQ(sink.zeroed, 1u);
}

TEST(MigrationPages, ScatteredPagesShareAFrameAndTheOthersAreLeftAlone) {
  std::vector<uint8_t> a(kPageSize, 0x11), z(kPageSize, 0);
  PagesFrameBuilder b;
  // Pages 0 (data), 2 (zero) and 255 (data) of a 256-page window; the rest not sent.
  b.build(0, 256, [&](uint32_t i) -> const uint8_t* { return i == 0 || i == 255 ? a.data() : i == 2 ? z.data() : nullptr; });
  EXPECT_EQ(b.data_pages(), 2u);
  EXPECT_EQ(b.zero_pages(), 1u);
  auto frame = std::vector<uint8_t>(b.bytes().begin(), b.bytes().end());
  EXPECT_EQ(frame.size(), kFrameHeaderSize + 12 + 64 + 2 * kPageSize + kFrameTrailerSize);
  auto h = decode_frame_header(std::span(frame).first(kFrameHeaderSize));
  ASSERT_TRUE(h) << h.error().message();
  uint32_t crc;
  std::memcpy(&crc, frame.data() + frame.size() - 4, 4);
  ASSERT_TRUE(check_frame_crc(std::span(frame).first(kFrameHeaderSize), b.payload(), crc));
  BufferSink sink(kMem);
  auto n = apply_pages(b.payload(), kMem, sink);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->data, 2u);
  EXPECT_EQ(n->zero, 1u);
  EXPECT_EQ(sink.mem[0], 0x11);
  EXPECT_EQ(sink.mem[kPageSize], 0xee);  // not sent: untouched
  EXPECT_EQ(sink.mem[2 * kPageSize], 0);
  EXPECT_EQ(sink.mem[255 * kPageSize + 7], 0x11);
  EXPECT_EQ(sink.writes, 2u);
  EXPECT_EQ(sink.zeroed, 1u);
  // The builder's buffer is reused: a smaller window after it is whole and right.
  b.build(4 * kPageSize, 1, [&](uint32_t) { return a.data(); });
  EXPECT_EQ(b.bytes().size(), kFrameHeaderSize + 12 + 2 + kPageSize + kFrameTrailerSize);
  auto m = apply_pages(b.payload(), kMem, sink);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, 1u);
}

TEST(MigrationPages, AWideWindowCarriesPagesFarApart) {
  constexpr uint64_t kBig = uint64_t{kMaxWindowPages} * kPageSize * 2;  // 256 MiB
  std::vector<uint8_t> ram(uint64_t{kMaxWindowPages} * kPageSize, 0);
  ram[0] = 1;
  ram[1000 * kPageSize + 5] = 2;
  ram[(kMaxWindowPages - 1) * kPageSize + 4095] = 3;
  const uint32_t sent[] = {0, 7, 1000, kMaxWindowPages - 1};  // page 7 is a zero page
  PagesFrameBuilder b;
  b.build(kMaxWindowPages * kPageSize, kMaxWindowPages, sent, ram.data());
  EXPECT_EQ(b.data_pages(), 3u);
  EXPECT_EQ(b.zero_pages(), 1u);
  // Two 4 KiB bitmaps and the data: one frame where 256-page windows took three.
  EXPECT_EQ(b.payload().size(), 12 + 2 * (kMaxWindowPages / 8) + 3 * kPageSize);
  auto h = decode_frame_header(b.bytes().first(kFrameHeaderSize));
  ASSERT_TRUE(h) << h.error().message();
  BufferSink sink(kBig);
  auto n = apply_pages(b.payload(), kBig, sink);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(n->data, 3u);
  EXPECT_EQ(n->zero, 1u);
  uint64_t base = uint64_t{kMaxWindowPages} * kPageSize;
  EXPECT_EQ(sink.mem[base], 1);
  EXPECT_EQ(sink.mem[base + 1000 * kPageSize + 5], 2);
  EXPECT_EQ(sink.mem[base + (kMaxWindowPages - 1) * kPageSize + 4095], 3);
  EXPECT_EQ(sink.mem[base + 7 * kPageSize], 0);
  EXPECT_EQ(sink.mem[base + 8 * kPageSize], 0xee);  // not sent: untouched
  EXPECT_EQ(sink.writes, 3u);
  EXPECT_EQ(sink.zeroed, 1u);
}

TEST(MigrationPages, WindowsAndDataPastTheBoundsAreRefused) {
  constexpr uint64_t kBig = uint64_t{kMaxWindowPages} * kPageSize * 2;
  BufferSink sink(kBig);
  std::vector<uint8_t> a(kPageSize, 0x11);
  // A window one page wider than the most.
  PagesFrameBuilder b;
  const uint32_t first[] = {0};
  b.build(0, kMaxWindowPages + 1, first, a.data());
  auto w = apply_pages(b.payload(), kBig, sink);
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find(cat("page count ", kMaxWindowPages + 1, " is not 1 to ", kMaxWindowPages)),
            std::string::npos)
      << w.error().message();
  // More data pages than a frame may carry.
  auto many = encode_pages(0, kMaxRunPages + 1, [&](uint32_t) { return a.data(); });
  auto m = apply_pages(many, kBig, sink);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find(cat(kMaxRunPages + 1, " data pages, more than ", kMaxRunPages)), std::string::npos)
      << m.error().message();
  EXPECT_EQ(sink.writes, 0u);
}

TEST(MigrationReady, RoundTripAndBounds) {
  Ready r{1234, 5678};
  auto d = decode_ready(encode_ready(r));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->build_us, 1234u);
  EXPECT_EQ(d->restore_estimate_us, 5678u);
  auto bytes = encode_ready(r);
  bytes.pop_back();
  auto t = decode_ready(bytes);
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().message().find("READY: truncated at restore estimate"), std::string::npos) << t.error().message();
  bytes = encode_ready(r);
  bytes.push_back(0);
  EXPECT_FALSE(decode_ready(bytes));
  auto huge = decode_ready(encode_ready(Ready{1, kMaxRestoreEstimateUs + 1}));
  ASSERT_FALSE(huge);
  EXPECT_NE(huge.error().message().find("restore estimate"), std::string::npos);
}

TEST(MigrationPages, AddressesOutsideRamAndBadLengthsAreRefused) {
  std::vector<uint8_t> a(kPageSize, 0x11);
  BufferSink sink(kMem);
  auto one = [&](uint32_t) { return a.data(); };
  // Past the end, straddling the end, misaligned, wrapping around 2^64.
  for (uint64_t off : {kMem, kMem - kPageSize, uint64_t{100}, ~uint64_t{0} - 4095}) {
    auto r = apply_pages(encode_pages(off, 2, one), kMem, sink);
    EXPECT_FALSE(r) << off;
  }
  auto r = apply_pages(encode_pages(kMem - kPageSize, 2, one), kMem, sink);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("outside guest RAM"), std::string::npos) << r.error().message();
  auto p = encode_pages(0, 2, one);
  p.pop_back();
  EXPECT_FALSE(apply_pages(p, kMem, sink));  // short data
  p = encode_pages(0, 2, one);
  p[12] |= 0x80;  // a bit past the count
  EXPECT_FALSE(apply_pages(p, kMem, sink));
  p = encode_pages(0, 2, one);
  p[12] &= ~1;  // data for a page not marked sent
  auto ns = apply_pages(p, kMem, sink);
  ASSERT_FALSE(ns);
  EXPECT_NE(ns.error().message().find("not marked sent"), std::string::npos) << ns.error().message();
  p = encode_pages(0, 1, one);
  uint32_t zero = 0;
  std::memcpy(p.data() + 8, &zero, 4);
  EXPECT_FALSE(apply_pages(p, kMem, sink));
  EXPECT_EQ(sink.writes, 0u);  // nothing written by a refused run
}

TEST(MigrationReceiver, AcceptsAWholeStream) {
  BufferSink sink(kMem);
  Hello seen;
  snapshot::VmSpec built;
  StreamReceiver r(
      {},
      [&](const Hello& h) -> Status {
        seen = h;
        return ok();
      },
      [&](const snapshot::VmSpec& spec) -> Result<MemorySink*> {
        built = spec;
        return &sink;
      });
  std::vector<uint8_t> a(kPageSize, 0x5a);
  ASSERT_TRUE(feed(r, encode_frame(FrameType::kHello, encode_hello(sample_hello()))));
  EXPECT_EQ(seen.memory_size, kMem);
  auto ms = feed(r, machine_frame());
  ASSERT_TRUE(ms) << ms.error().message();
  EXPECT_EQ(built.memory, kMem);
  EXPECT_EQ(built.devices.size(), 1u);
  ASSERT_TRUE(feed(r, pages_frame(0, 4, {a, {}, a, {}})));
  ASSERT_TRUE(feed(r, pages_frame(0, 1, {{}})));  // a page that became zero
  auto st = feed(r, encode_frame(FrameType::kState, snapshot::encode_state(sample_state(), "1")));
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_FALSE(r.finished());
  ASSERT_TRUE(feed(r, encode_frame(FrameType::kEnd, {})));
  EXPECT_TRUE(r.finished());
  EXPECT_EQ(r.data_pages(), 2u);
  EXPECT_EQ(r.zero_pages(), 3u);
  EXPECT_EQ(sink.mem[0], 0);
  EXPECT_EQ(sink.mem[2 * kPageSize], 0x5a);
  EXPECT_EQ(r.state().vcpus.at(0).regs.rip, 0x1000u);
  auto after = feed(r, encode_frame(FrameType::kEnd, {}));
  ASSERT_FALSE(after);
  EXPECT_NE(after.error().message().find("after END"), std::string::npos);
}

TEST(MigrationReceiver, RefusesFramesOutOfOrderAndMismatchedState) {
  BufferSink sink(kMem);
  auto make = [&] {
    return StreamReceiver(
        {}, [](const Hello&) -> Status { return ok(); },
        [&](const snapshot::VmSpec&) -> Result<MemorySink*> { return &sink; });
  };
  auto hello = [] { return encode_frame(FrameType::kHello, encode_hello(sample_hello())); };
  std::vector<uint8_t> a(kPageSize, 1);
  {
    auto r = make();
    auto s = feed(r, pages_frame(0, 1, {a}));
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("starts with PAGES, not HELLO"), std::string::npos);
  }
  {
    auto r = make();
    ASSERT_TRUE(feed(r, hello()));
    ASSERT_TRUE(feed(r, machine_frame()));
    EXPECT_FALSE(feed(r, encode_frame(FrameType::kEnd, {})));  // END before STATE
  }
  {
    auto r = make();
    ASSERT_TRUE(feed(r, hello()));
    ASSERT_TRUE(feed(r, machine_frame()));
    auto s = sample_state();
    s.spec.memory = 2 * kMem;
    s.memory.size = 2 * kMem;
    auto st = feed(r, encode_frame(FrameType::kState, snapshot::encode_state(s, "1")));
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message().find("differs from the HELLO"), std::string::npos) << st.error().message();
  }
  {
    auto r = make();
    ASSERT_TRUE(feed(r, hello()));
    ASSERT_TRUE(feed(r, machine_frame()));
    auto bytes = snapshot::encode_state(sample_state(), "1");
    bytes[bytes.size() / 2] ^= 1;  // the state's own CRC catches it
    EXPECT_FALSE(feed(r, encode_frame(FrameType::kState, bytes)));
  }
  {
    auto r = make();
    ASSERT_TRUE(feed(r, hello()));
    ASSERT_TRUE(feed(r, machine_frame()));
    EXPECT_FALSE(feed(r, pages_frame(0, 1, {a}), /*fd=*/true));  // an fd on a PAGES frame
    std::vector<uint8_t> sz(8);
    EXPECT_FALSE(feed(r, encode_frame(FrameType::kMemfd, sz), true));  // MEMFD without the memfd flag
  }
  {
    StreamReceiver::Limits lim;
    lim.max_memory = kMem / 2;
    StreamReceiver r(
        lim, [](const Hello&) -> Status { return ok(); },
        [&](const snapshot::VmSpec&) -> Result<MemorySink*> { return &sink; });
    auto s = feed(r, hello());
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("exceeds this receiver's limit"), std::string::npos);
  }
}

// A memfd migration's hand-overs: TAP per NIC and one VSOCK, each with its
// fd, after the MEMFD and before STATE, naming a device the machine has, once.
TEST(MigrationReceiver, TapAndVsockHandOversAreChecked) {
  snapshot::VmSpec spec = sample_spec();
  snapshot::DeviceSpec net, vs;
  net.kind = snapshot::DeviceSpec::Kind::kNet;
  net.net.tap = "vtap0";
  vs.kind = snapshot::DeviceSpec::Kind::kVsock;
  vs.vsock = {3, "/tmp/v.sock"};
  spec.devices.push_back(net);
  spec.devices.push_back(vs);
  auto make = [] {
    return StreamReceiver(
        {}, [](const Hello&) -> Status { return ok(); },
        [](const snapshot::VmSpec&) -> Result<MemorySink*> { return static_cast<MemorySink*>(nullptr); });
  };
  Hello h = sample_hello();
  h.memfd = true;
  auto u32 = [](uint32_t v) {
    std::vector<uint8_t> b(4);
    std::memcpy(b.data(), &v, 4);
    return b;
  };
  std::vector<uint8_t> size(8);
  std::memcpy(size.data(), &kMem, 8);
  auto start = [&](StreamReceiver& r, bool memfd_too) {
    ASSERT_TRUE(feed(r, encode_frame(FrameType::kHello, encode_hello(h))));
    ASSERT_TRUE(feed(r, machine_frame(spec)));
    if (memfd_too) {
      ASSERT_TRUE(feed(r, encode_frame(FrameType::kMemfd, size), true));
    }
  };
  {
    auto r = make();
    start(r, true);
    ASSERT_TRUE(feed(r, encode_frame(FrameType::kTap, u32(0)), true));
    EXPECT_EQ(r.last_tap_nic(), 0u);
    auto v = feed(r, encode_frame(FrameType::kVsock, u32(0)), true);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_TRUE(r.got_vsock());
    auto twice = feed(r, encode_frame(FrameType::kVsock, u32(0)), true);
    ASSERT_FALSE(twice);
    EXPECT_NE(twice.error().message().find("VSOCK: vsock device 0 twice"), std::string::npos) << twice.error().message();
  }
  {
    auto r = make();
    start(r, false);
    auto early = feed(r, encode_frame(FrameType::kVsock, u32(0)), true);
    ASSERT_FALSE(early) << "VSOCK before the MEMFD";
    EXPECT_NE(early.error().message().find("unexpected VSOCK"), std::string::npos) << early.error().message();
  }
  {
    auto r = make();
    start(r, true);
    auto nofd = feed(r, encode_frame(FrameType::kVsock, u32(0)), false);
    ASSERT_FALSE(nofd);
    EXPECT_NE(nofd.error().message().find("no file descriptor"), std::string::npos) << nofd.error().message();
    auto second = feed(r, encode_frame(FrameType::kVsock, u32(1)), true);
    ASSERT_FALSE(second);
    EXPECT_NE(second.error().message().find("vsock device 1, the machine has 1"), std::string::npos)
        << second.error().message();
    EXPECT_FALSE(feed(r, encode_frame(FrameType::kVsock, std::vector<uint8_t>(5)), true)) << "5 bytes";
    auto nic = feed(r, encode_frame(FrameType::kTap, u32(1)), true);
    ASSERT_FALSE(nic);
    EXPECT_NE(nic.error().message().find("NIC 1, the machine has 1"), std::string::npos) << nic.error().message();
  }
  {
    auto r = make();
    start(r, true);
    auto fd_on_end = feed(r, encode_frame(FrameType::kEnd, {}), true);
    ASSERT_FALSE(fd_on_end);
    EXPECT_NE(fd_on_end.error().message().find("only MEMFD, TAP and VSOCK may"), std::string::npos);
  }
}

// MACHINE: after HELLO and before anything else, decoded with the snapshot
// SPEC decoder, its vCPUs and memory those of the HELLO, the STATE's machine
// the same; errors name the frame and field.
TEST(MigrationReceiver, ChecksTheMachineFrame) {
  BufferSink sink(kMem);
  int built = 0;
  auto make = [&] {
    return StreamReceiver(
        {}, [](const Hello&) -> Status { return ok(); },
        [&](const snapshot::VmSpec&) -> Result<MemorySink*> {
          ++built;
          return &sink;
        });
  };
  auto hello = [] { return encode_frame(FrameType::kHello, encode_hello(sample_hello())); };
  auto refused = [&](const std::vector<uint8_t>& frame, const std::string& part) {
    auto r = make();
    EXPECT_TRUE(feed(r, hello()));
    auto s = feed(r, frame);
    ASSERT_FALSE(s) << part;
    EXPECT_NE(s.error().message().find(part), std::string::npos) << s.error().message();
  };
  {
    auto r = make();
    ASSERT_TRUE(feed(r, hello()));
    auto s = feed(r, pages_frame(0, 1, {{}}));  // pages before the machine
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("PAGES before MACHINE"), std::string::npos) << s.error().message();
  }
  {
    auto r = make();
    auto s = feed(r, machine_frame());  // before HELLO
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("starts with MACHINE"), std::string::npos);
  }
  auto spec = sample_spec();
  spec.memory = 2 * kMem;
  refused(machine_frame(spec), "migration MACHINE: memory size 2097152 differs from the HELLO's");
  spec = sample_spec();
  spec.cpus = 2;
  refused(machine_frame(spec), "migration MACHINE: vCPU count 2 differs");
  auto bytes = snapshot::encode_spec(sample_spec());
  bytes.pop_back();
  refused(encode_frame(FrameType::kMachine, bytes), "migration MACHINE: machine spec:");
  bytes = snapshot::encode_spec(sample_spec());
  bytes.push_back(0);
  refused(encode_frame(FrameType::kMachine, bytes), "unexpected bytes at the end");
  bytes = snapshot::encode_spec(sample_spec());
  bytes[0] = 0;  // 0 vCPUs
  refused(encode_frame(FrameType::kMachine, bytes), "vCPU count");
  EXPECT_EQ(built, 0) << "no machine for a refused MACHINE";
  {
    auto r = make();
    ASSERT_TRUE(feed(r, hello()));
    ASSERT_TRUE(feed(r, machine_frame()));
    EXPECT_EQ(built, 1);
    EXPECT_FALSE(feed(r, machine_frame()));  // twice
    auto s = sample_state();
    s.spec.irqchip = true;
    s.vm.irqchip = true;
    auto st = feed(r, encode_frame(FrameType::kState, snapshot::encode_state(s, "1")));
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message().find("irqchip on differs from the MACHINE's"), std::string::npos)
        << st.error().message();
  }
  {
    // A receiver without memory for the pages (nullptr outside a memfd migration) is refused.
    StreamReceiver r(
        {}, [](const Hello&) -> Status { return ok(); },
        [](const snapshot::VmSpec&) -> Result<MemorySink*> { return static_cast<MemorySink*>(nullptr); });
    ASSERT_TRUE(feed(r, hello()));
    EXPECT_FALSE(feed(r, machine_frame()));
  }
  // The frame's bound: a spec cannot claim more than 2 MiB.
  auto f = machine_frame();
  uint64_t huge = 3ULL << 20;
  std::memcpy(f.data() + 8, &huge, 8);
  EXPECT_FALSE(decode_frame_header(std::span(f).first(kFrameHeaderSize)));
}

TEST(MigrationEndpoint, ParsesTcpAndUnixAndNamesTheFlag) {
  auto t = parse_endpoint("tcp:127.0.0.1:4444", "--to");
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_EQ(t->kind, Endpoint::Kind::kTcp);
  EXPECT_EQ(t->port, 4444);
  auto v6 = parse_endpoint("tcp:[::1]:80", "--to");
  ASSERT_TRUE(v6) << v6.error().message();
  EXPECT_EQ(v6->host, "::1");
  auto u = parse_endpoint("unix:/tmp/x.sock", "--to");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->path, "/tmp/x.sock");
  for (const char* bad : {"tcp:127.0.0.1", "tcp:127.0.0.1:0", "tcp:127.0.0.1:70000", "tcp:host.example:80", "unix:",
                          "udp:1.2.3.4:5", "/tmp/x"}) {
    auto r = parse_endpoint(bad, "--to");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().message().rfind("--to", 0), 0u) << r.error().message();
  }
}

TEST(MigrationConnection, FramesAndAnFdCrossASocketpair) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Connection a{UniqueFd(sv[0])}, b{UniqueFd(sv[1])};
  int memfd = ::memfd_create("t", MFD_CLOEXEC);
  ASSERT_GE(memfd, 0);
  ASSERT_EQ(::ftruncate(memfd, 8192), 0);
  std::vector<uint8_t> size(8);
  ASSERT_TRUE(a.send(FrameType::kMemfd, size, memfd));
  ASSERT_TRUE(a.send(FrameType::kError, encode_text("no\x01way")));
  auto f = b.receive(1000);
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(f->header.type, FrameType::kMemfd);
  ASSERT_TRUE(f->fd);
  struct stat st {};
  ASSERT_EQ(::fstat(f->fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 8192);
  auto g = b.receive(1000);
  ASSERT_TRUE(g);
  EXPECT_FALSE(g->fd);
  EXPECT_EQ(decode_text(g->payload), "no?way");
  // A corrupted frame and a closed peer are errors, not hangs.
  auto bad = encode_frame(FrameType::kError, encode_text("x"));
  bad[16] ^= 1;
  ASSERT_TRUE(a.send_raw(bad));
  auto c = b.receive(1000);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("CRC-32C"), std::string::npos);
  auto d = b.receive(50);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ETIMEDOUT);
  { Connection gone = std::move(a); }
  auto e = b.receive(1000);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("closed the connection"), std::string::npos);
  ::close(memfd);
}

// What the sender counts as still on its way to the destination (and drains
// before the pause) is what the peer has not read yet.
TEST(MigrationConnection, QueuedBytesAreWhatThePeerHasNotRead) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Connection a{UniqueFd(sv[0])}, b{UniqueFd(sv[1])};
  EXPECT_EQ(a.queued(), 0u);
  EXPECT_TRUE(a.drain(10));
  std::vector<uint8_t> page(4096, 7);
  ASSERT_TRUE(a.send(FrameType::kError, page));
  EXPECT_GE(a.queued(), page.size());
  EXPECT_FALSE(a.drain(20));  // nobody reads
  auto f = b.receive(1000);
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(a.queued(), 0u);
  EXPECT_TRUE(a.drain(10));
}


TEST(MigrationPostcopy, BitmapAndRequestAreChecked) {
  std::vector<uint64_t> missing(kMem / kPageSize / 64);
  missing[0] = 0b1010;
  missing[3] = 1ULL << 63;
  auto b = encode_postcopy(missing, kMem);
  ASSERT_EQ(b.size(), kMem / kPageSize / 8);
  auto back = decode_postcopy(b, kMem);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, missing);
  b.pop_back();
  auto short_one = decode_postcopy(b, kMem);
  ASSERT_FALSE(short_one);
  EXPECT_NE(short_one.error().message().find("bitmap of 31 bytes, the guest's RAM needs 32"), std::string::npos)
      << short_one.error().message();
  // 10 pages: the bits of pages 10..15 of the second byte must be clear.
  std::vector<uint8_t> odd = {0xff, 0x03};
  EXPECT_TRUE(decode_postcopy(odd, 10 * kPageSize));
  odd[1] = 0x04;
  auto past = decode_postcopy(odd, 10 * kPageSize);
  ASSERT_FALSE(past);
  EXPECT_NE(past.error().message().find("past the end"), std::string::npos);

  auto r = decode_request(encode_request(5 * kPageSize), kMem);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 5 * kPageSize);
  EXPECT_FALSE(decode_request(encode_request(kMem), kMem));            // past RAM
  EXPECT_FALSE(decode_request(encode_request(kPageSize + 8), kMem));   // not a page
  EXPECT_FALSE(decode_request(std::vector<uint8_t>(4), kMem));         // short
  EXPECT_FALSE(decode_request(std::vector<uint8_t>(12), kMem));        // long
}

TEST(MigrationPostcopy, HelloFlagsAndReceiverOrder) {
  Hello h = sample_hello();
  h.postcopy = true;
  auto d = decode_hello(encode_hello(h));
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->postcopy);
  h.memfd = true;
  EXPECT_FALSE(decode_hello(encode_hello(h)));  // a memfd migration has nothing to post-copy

  BufferSink pre(kMem), post(kMem);
  std::vector<uint64_t> got;
  auto make = [&](bool allow) {
    StreamReceiver r({}, [](const Hello&) -> Status { return ok(); },
                     [&](const snapshot::VmSpec&) -> Result<MemorySink*> { return &pre; });
    if (allow)
      r.set_postcopy([&](std::vector<uint64_t> m) -> Result<MemorySink*> {
        got = std::move(m);
        return &post;
      });
    return r;
  };
  std::vector<uint64_t> missing(kMem / kPageSize / 64);
  missing[0] = 0b100;
  auto pc = encode_frame(FrameType::kPostcopy, encode_postcopy(missing, kMem));
  auto state = encode_frame(FrameType::kState, snapshot::encode_state(sample_state(), "1"));
  std::vector<uint8_t> a(kPageSize, 0x77);
  Hello ph = sample_hello();
  ph.postcopy = true;
  {
    // A HELLO without the flag: POSTCOPY is out of order.
    auto r = make(true);
    ASSERT_TRUE(feed(r, encode_frame(FrameType::kHello, encode_hello(sample_hello()))));
    ASSERT_TRUE(feed(r, machine_frame()));
    EXPECT_FALSE(feed(r, pc));
  }
  {
    // A receiver without post-copy refuses it.
    auto r = make(false);
    ASSERT_TRUE(feed(r, encode_frame(FrameType::kHello, encode_hello(ph))));
    ASSERT_TRUE(feed(r, machine_frame()));
    auto s = feed(r, pc);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("does not take post-copy"), std::string::npos);
  }
  auto r = make(true);
  ASSERT_TRUE(feed(r, encode_frame(FrameType::kHello, encode_hello(ph))));
  ASSERT_TRUE(feed(r, machine_frame()));
  ASSERT_TRUE(feed(r, pages_frame(0, 2, {a, a})));
  ASSERT_TRUE(feed(r, pc));
  EXPECT_EQ(got, missing);
  EXPECT_FALSE(r.ended());
  EXPECT_FALSE(feed(r, pc));  // once only
  ASSERT_TRUE(feed(r, state));
  ASSERT_TRUE(feed(r, encode_frame(FrameType::kEnd, {})));
  EXPECT_TRUE(r.ended());
  EXPECT_FALSE(r.finished());
  EXPECT_TRUE(r.postcopy());
  // After END the missing pages come into the post-copy sink, then COMPLETE.
  ASSERT_TRUE(feed(r, pages_frame(2 * kPageSize, 1, {a})));
  EXPECT_EQ(post.writes, 1u);
  EXPECT_EQ(pre.writes, 2u);
  EXPECT_FALSE(feed(r, state));  // only PAGES and COMPLETE now
  ASSERT_TRUE(feed(r, encode_frame(FrameType::kComplete, {})));
  EXPECT_TRUE(r.finished());
  auto after = feed(r, pages_frame(0, 1, {a}));
  ASSERT_FALSE(after);
  EXPECT_NE(after.error().message().find("after COMPLETE"), std::string::npos);
}

}  // namespace
}  // namespace vessel::vmm::migration
