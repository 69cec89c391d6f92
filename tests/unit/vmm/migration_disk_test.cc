// --copy-disks without KVM (vmm/migration/disk_copy.h, protocol.h): the DISK
// frame's bounds, the HELLO flag, the receiver's checks of device, order and
// completeness, and image files (raw and a qcow2 overlay) copied while they
// change, frame by frame into a receiver, ending byte for byte equal.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "common/strings.h"
#include "vmm/disk/qcow2.h"
#include "vmm/disk/qcow2_create.h"
#include "vmm/disk/raw.h"
#include "vmm/migration/disk_copy.h"
#include "vmm/migration/protocol.h"
#include "vmm/snapshot/state_file.h"

namespace vessel::vmm::migration {
namespace copy_disks_test {  // named: the unit tests build as unity files

constexpr uint64_t kMem = 1 << 20;

struct TempDir {
  std::string path;
  TempDir() {
    char t[] = "/tmp/vessel-migdisk-XXXXXX";
    path = ::mkdtemp(t);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

Hello disk_hello() {
  Hello h;
  h.version = kCopyDisksStreamVersion;
  h.vessel_version = "9.9.9";
  h.memory_size = kMem;
  h.cpus = 1;
  h.copy_disks = true;
  return h;
}

// Devices: 0 rng, 1 writable disk at `a`, 2 read-only disk, 3 writable disk at `b`.
snapshot::VmSpec disk_spec(const std::string& a = "/src/a.raw", const std::string& b = "/src/b.qcow2") {
  snapshot::VmSpec s;
  s.cpus = 1;
  s.memory = kMem;
  s.irqchip = false;
  snapshot::DeviceSpec d;
  d.kind = snapshot::DeviceSpec::Kind::kRng;
  s.devices.push_back(d);
  d.kind = snapshot::DeviceSpec::Kind::kBlock;
  d.path = a;
  s.devices.push_back(d);
  d.path = "/shared/base.raw";
  d.block.readonly = true;
  s.devices.push_back(d);
  d.path = b;
  d.block.readonly = false;
  s.devices.push_back(d);
  return s;
}

snapshot::SnapshotState disk_state(const snapshot::VmSpec& spec) {
  snapshot::SnapshotState s;
  s.id = 1;
  s.spec = spec;
  snapshot::VcpuState v;
  v.mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
  s.vcpus.push_back(v);
  for (const auto& d : spec.devices) {
    snapshot::VirtioState vs;
    vs.device_type = d.kind == snapshot::DeviceSpec::Kind::kRng ? 4 : 2;
    s.devices.virtio.push_back(vs);
  }
  s.memory.size = kMem;
  return s;
}

Status feed(StreamReceiver& r, FrameType t, std::span<const uint8_t> payload) {
  auto frame = encode_frame(t, payload);
  auto h = TRY(decode_frame_header(std::span(frame).first(kFrameHeaderSize)));
  return r.on_frame(h, std::span(frame).subspan(kFrameHeaderSize, h.length));
}

struct NullSink : MemorySink {
  Status write_page(uint64_t, const uint8_t*) override { return ok(); }
  Status zero_pages(uint64_t, uint64_t) override { return ok(); }
};

// Records what reaches it.
struct RecordingDisks : DiskSink {
  std::map<uint32_t, uint64_t> sizes;
  uint64_t data = 0, zeroed = 0;
  Status set_size(uint32_t d, uint64_t s) override {
    sizes[d] = s;
    return ok();
  }
  Status write(uint32_t, uint64_t, std::span<const uint8_t> b) override {
    data += b.size();
    return ok();
  }
  Status zero(uint32_t, uint64_t, uint64_t len) override {
    zeroed += len;
    return ok();
  }
};

std::vector<uint8_t> chunk(uint32_t device, DiskOp op, uint64_t offset, uint64_t length,
                           std::span<const uint8_t> data = {}) {
  DiskChunk c;
  c.device = device;
  c.op = op;
  c.offset = offset;
  c.length = length;
  c.data = data;
  return encode_disk(c);
}

TEST(MigrationDisk, FrameRoundTripAndBounds) {
  std::vector<uint8_t> d(3000, 0x42);
  auto c = decode_disk(chunk(3, DiskOp::kData, 4096, 0, d));
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(c->device, 3u);
  EXPECT_EQ(c->op, DiskOp::kData);
  EXPECT_EQ(c->offset, 4096u);
  EXPECT_EQ(c->length, 3000u);
  ASSERT_EQ(c->data.size(), 3000u);
  EXPECT_EQ(c->data[2999], 0x42);
  c = decode_disk(chunk(1, DiskOp::kSize, 1 << 30, 0));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 1u << 30);
  c = decode_disk(chunk(1, DiskOp::kZero, 0, 65536));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->length, 65536u);

  auto refused = [](std::vector<uint8_t> p, const char* what) {
    auto r = decode_disk(p);
    ASSERT_FALSE(r) << what;
    EXPECT_NE(r.error().message().find("migration DISK"), std::string::npos) << r.error().message();
  };
  refused(chunk(1, DiskOp::kSize, kMaxDiskFile + 1, 0), "a file over 16 TiB");
  refused(chunk(1, DiskOp::kZero, 0, 0), "an empty ZERO");
  refused(chunk(1, DiskOp::kZero, kMaxDiskFile - 10, 11), "a ZERO past 16 TiB");
  refused(chunk(1, DiskOp::kZero, 0, kMaxDiskData + 1), "a ZERO over 1 MiB (a short frame for a long write)");
  refused(chunk(1, DiskOp::kZero, UINT64_MAX - 1, 4), "a ZERO whose end wraps");
  refused(chunk(1, DiskOp::kData, kMaxDiskFile, 0, d), "DATA past 16 TiB");
  auto p = chunk(1, DiskOp::kData, 0, 0, d);
  p.push_back(0);
  refused(p, "DATA with a byte more than its length");
  p.resize(p.size() - 2);
  refused(p, "DATA with a byte less");
  auto sz = chunk(1, DiskOp::kSize, 4096, 0);
  sz.push_back(1);
  refused(sz, "a SIZE with data");
  auto op = chunk(1, DiskOp::kSize, 0, 0);
  op[4] = 7;
  refused(op, "an unknown op");
  std::vector<uint8_t> big(kMaxDiskData + 1, 1);
  refused(chunk(1, DiskOp::kData, 0, 0, big), "DATA over 1 MiB");
  for (size_t n = 0; n < 24; ++n) EXPECT_FALSE(decode_disk(std::span(sz).first(n))) << n;
  // The frame bound: 24 bytes of header and 1 MiB.
  EXPECT_EQ(max_payload(FrameType::kDisk), 24 + kMaxDiskData);
}

TEST(MigrationDisk, HelloFlagNeedsStreamVersion6AndNoMemfd) {
  auto d = decode_hello(encode_hello(disk_hello()));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_TRUE(d->copy_disks);
  Hello old = disk_hello();
  old.version = kPlainStreamVersion;
  d = decode_hello(encode_hello(old));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message().find("unknown flags 4 for stream version 5"), std::string::npos) << d.error().message();
  Hello local = disk_hello();
  local.memfd = true;
  EXPECT_FALSE(decode_hello(encode_hello(local)));
}

TEST(MigrationDisk, ReceiverChecksTheDeviceTheOrderAndThatEveryDiskCame) {
  NullSink mem;
  RecordingDisks disks;
  auto make = [&](bool with_sink) {
    StreamReceiver r({}, [](const Hello&) -> Status { return ok(); },
                     [&](const snapshot::VmSpec&) -> Result<MemorySink*> { return &mem; });
    if (with_sink) r.set_disk_sink(&disks);
    return r;
  };
  auto spec = snapshot::encode_spec(disk_spec());
  auto state = snapshot::encode_state(disk_state(disk_spec()), "1");
  std::vector<uint8_t> data(100, 9);
  auto expect_error = [](Status s, const std::string& text) {
    ASSERT_FALSE(s) << text;
    EXPECT_NE(s.error().message().find(text), std::string::npos) << s.error().message();
  };
  {
    // A HELLO that copies no disks: DISK is refused.
    Hello plain = disk_hello();
    plain.copy_disks = false;
    auto r = make(true);
    ASSERT_TRUE(feed(r, FrameType::kHello, encode_hello(plain)));
    ASSERT_TRUE(feed(r, FrameType::kMachine, spec));
    expect_error(feed(r, FrameType::kDisk, chunk(1, DiskOp::kSize, 4096, 0)), "the HELLO copies no disks");
  }
  {
    auto r = make(false);
    ASSERT_TRUE(feed(r, FrameType::kHello, encode_hello(disk_hello())));
    ASSERT_TRUE(feed(r, FrameType::kMachine, spec));
    expect_error(feed(r, FrameType::kDisk, chunk(1, DiskOp::kSize, 4096, 0)), "this receiver takes no disks");
  }
  auto r = make(true);
  ASSERT_TRUE(feed(r, FrameType::kHello, encode_hello(disk_hello())));
  expect_error(feed(r, FrameType::kDisk, chunk(1, DiskOp::kSize, 4096, 0)), "before MACHINE");
  ASSERT_TRUE(feed(r, FrameType::kMachine, spec));
  expect_error(feed(r, FrameType::kDisk, chunk(0, DiskOp::kSize, 4096, 0)), "device 0 is not a writable virtio-blk");
  expect_error(feed(r, FrameType::kDisk, chunk(2, DiskOp::kSize, 4096, 0)), "device 2 is not a writable virtio-blk");
  expect_error(feed(r, FrameType::kDisk, chunk(9, DiskOp::kSize, 4096, 0)), "device 9, the machine has 4");
  expect_error(feed(r, FrameType::kDisk, chunk(1, DiskOp::kData, 0, 0, data)), "data before its SIZE");
  ASSERT_TRUE(feed(r, FrameType::kDisk, chunk(1, DiskOp::kSize, 4096, 0)));
  ASSERT_TRUE(feed(r, FrameType::kDisk, chunk(1, DiskOp::kData, 3996, 0, data)));
  expect_error(feed(r, FrameType::kDisk, chunk(1, DiskOp::kData, 3997, 0, data)), "lie past its file's 4096");
  expect_error(feed(r, FrameType::kDisk, chunk(1, DiskOp::kZero, 4000, 97)), "lie past its file's 4096");
  ASSERT_TRUE(feed(r, FrameType::kDisk, chunk(1, DiskOp::kZero, 0, 4096)));
  // A STATE whose devices are not the MACHINE's (the restore builds the STATE's).
  {
    snapshot::VmSpec other = disk_spec();
    other.devices[1].path = "/etc/elsewhere";
    expect_error(feed(r, FrameType::kState, snapshot::encode_state(disk_state(other), "1")),
                 "device 1 differs from the MACHINE's");
    other = disk_spec();
    other.devices.push_back(other.devices[1]);
    expect_error(feed(r, FrameType::kState, snapshot::encode_state(disk_state(other), "1")),
                 "5 devices, the MACHINE had 4");
  }
  // Device 3 never came: the STATE is refused.
  expect_error(feed(r, FrameType::kState, state), "the disk of device 3 (/src/b.qcow2) was not copied");
  EXPECT_EQ(disks.sizes.at(1), 4096u);
  EXPECT_EQ(disks.data, 100u);
  EXPECT_EQ(disks.zeroed, 4096u);

  auto whole = make(true);
  ASSERT_TRUE(feed(whole, FrameType::kHello, encode_hello(disk_hello())));
  ASSERT_TRUE(feed(whole, FrameType::kMachine, spec));
  ASSERT_TRUE(feed(whole, FrameType::kDisk, chunk(1, DiskOp::kSize, 0, 0)));
  ASSERT_TRUE(feed(whole, FrameType::kDisk, chunk(3, DiskOp::kSize, 1 << 20, 0)));
  auto st = feed(whole, FrameType::kState, state);
  ASSERT_TRUE(st) << st.error().message();
  ASSERT_TRUE(feed(whole, FrameType::kEnd, {}));
  EXPECT_TRUE(whole.finished());
}

// Copies image files while they change: FileCopier's frames (whole, then the
// changed chunks, round after round) through a StreamReceiver into
// CopiedDisks, then the copies are compared with the sources.
struct CopyRig {
  TempDir src, dst;
  snapshot::VmSpec spec;
  NullSink mem;
  std::unique_ptr<CopiedDisks> copies;
  std::unique_ptr<StreamReceiver> r;
  CopyRig() {
    spec = disk_spec(src.path + "/a.raw", src.path + "/b.qcow2");
    spec.devices[2].path = src.path + "/base.raw";
  }
  Status begin() {
    copies = TRY(CopiedDisks::open(dst.path));
    r = std::make_unique<StreamReceiver>(
        StreamReceiver::Limits{}, [](const Hello&) -> Status { return ok(); },
        [this](const snapshot::VmSpec& s) -> Result<MemorySink*> {
          copies->set_spec(s);
          return &mem;
        });
    r->set_disk_sink(copies.get());
    TRY(feed(*r, FrameType::kHello, encode_hello(disk_hello())));
    return feed(*r, FrameType::kMachine, snapshot::encode_spec(spec));
  }
  FileCopier::SendFn sender() {
    return [this](std::span<const uint8_t> p) { return feed(*r, FrameType::kDisk, p); };
  }
  Status end(snapshot::SnapshotState& st) {
    TRY(feed(*r, FrameType::kState, snapshot::encode_state(disk_state(spec), "1")));
    TRY(feed(*r, FrameType::kEnd, {}));
    st = r->state();
    return copies->finish(st);
  }
};

void fill(std::vector<uint8_t>& b, uint8_t seed) {
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(seed + i * 13 / 4096);
}

TEST(MigrationDisk, RawAndQcow2FilesCopiedWhileTheyChangeEndEqual) {
  CopyRig rig;
  const std::string a = rig.spec.devices[1].path, base = rig.spec.devices[2].path, b = rig.spec.devices[3].path;
  constexpr uint64_t kDisk = 8 << 20;
  {
    // a: a sparse raw disk with two data extents; base: the qcow2 overlay's backing file.
    int fd = ::open(a.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, kDisk), 0);
    ::close(fd);
    std::vector<uint8_t> base_data(kDisk);
    fill(base_data, 3);
    std::ofstream(base, std::ios::binary).write(reinterpret_cast<const char*>(base_data.data()), kDisk);
  }
  ASSERT_TRUE(disk::create_qcow2_overlay(b, base));
  auto raw = disk::open_disk(a, false);
  auto q = disk::open_disk(b, false);
  ASSERT_TRUE(raw && q);
  std::vector<uint8_t> w(200 * 1024);
  fill(w, 1);
  ASSERT_TRUE((*raw)->write(1 << 20, w));
  ASSERT_TRUE((*raw)->write(6 << 20, std::span(w).first(5000)));
  ASSERT_TRUE((*q)->write(100, std::span(w).first(70000)));

  ASSERT_TRUE(rig.begin());
  auto ca = FileCopier::open(1, a);
  auto cb = FileCopier::open(3, b);
  ASSERT_TRUE(ca && cb);
  (*raw)->set_write_log(ca->log());
  (*q)->set_write_log(cb->log());
  auto send = rig.sender();
  ASSERT_TRUE(ca->send(send));  // whole
  ASSERT_TRUE(cb->send(send));
  EXPECT_LT(ca->bytes_sent(), kDisk / 2);  // the holes did not travel
  for (int round = 0; round < 3; ++round) {
    fill(w, static_cast<uint8_t>(50 + round));
    // Writes after the whole copy: data, a zeroed range, a punched one, and
    // new clusters in the overlay (it grows: a SIZE goes first).
    ASSERT_TRUE((*raw)->write(static_cast<uint64_t>(round) * 3000 + (2 << 20), w));
    ASSERT_TRUE((*raw)->write_zeroes(1 << 20, 8192));
    ASSERT_TRUE((*raw)->discard(6 << 20, 4096));
    ASSERT_TRUE((*q)->write((static_cast<uint64_t>(round) + 1) * (1 << 20) + 7, w));
    ASSERT_TRUE((*q)->write_zeroes(64 * 1024, 1000));
    auto s = ca->send(send);
    ASSERT_TRUE(s) << s.error().message();
    s = cb->send(send);
    ASSERT_TRUE(s) << s.error().message();
  }
  (*raw)->set_write_log(nullptr);
  (*q)->set_write_log(nullptr);
  ASSERT_TRUE((*raw)->flush() && (*q)->flush());
  snapshot::SnapshotState st;
  auto e = rig.end(st);
  ASSERT_TRUE(e) << e.error().message();
  const std::string ca_path = rig.dst.path + "/a.raw", cb_path = rig.dst.path + "/b.qcow2";
  EXPECT_EQ(slurp(ca_path), slurp(a));
  EXPECT_EQ(slurp(cb_path), slurp(b));
  // The state now names the copies, and its disk records are theirs.
  EXPECT_EQ(st.spec.devices[1].path, ca_path);
  EXPECT_EQ(st.spec.devices[3].path, cb_path);
  EXPECT_EQ(st.spec.devices[2].path, base);  // read-only: not copied
  // The copied overlay reads as the source does (through the same backing file).
  auto qc = disk::open_disk(cb_path, true);
  ASSERT_TRUE(qc) << qc.error().message();
  std::vector<uint8_t> x(3 << 20), y(3 << 20);
  ASSERT_TRUE((*q)->read(0, x) && (*qc)->read(0, y));
  EXPECT_EQ(x, y);
  rig.copies->commit();
}

TEST(MigrationDisk, CopiesAreRemovedUnlessCommittedAndNeverReplaceAFile) {
  TempDir dst;
  snapshot::VmSpec spec = disk_spec("/src/a.raw", "/elsewhere/a.raw");
  {
    auto c = CopiedDisks::open(dst.path);
    ASSERT_TRUE(c);
    (*c)->set_spec(spec);
    ASSERT_TRUE((*c)->set_size(1, 4096));
    EXPECT_TRUE(std::filesystem::exists(dst.path + "/a.raw"));
    // Another disk of the same name: refused, not overwritten.
    auto s = (*c)->set_size(3, 4096);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("both named 'a.raw'"), std::string::npos) << s.error().message();
  }
  EXPECT_FALSE(std::filesystem::exists(dst.path + "/a.raw"));  // not committed: removed
  std::ofstream(dst.path + "/a.raw") << "mine";
  {
    auto c = CopiedDisks::open(dst.path);
    ASSERT_TRUE(c);
    (*c)->set_spec(spec);
    auto s = (*c)->set_size(1, 4096);
    ASSERT_FALSE(s);
    EXPECT_NE(s.error().message().find("File exists"), std::string::npos) << s.error().message();
  }
  EXPECT_EQ(slurp(dst.path + "/a.raw"), std::vector<uint8_t>({'m', 'i', 'n', 'e'}));  // left alone
  // A source path that names no file, and a directory that is not one.
  spec.devices[1].path = "/src/..";
  auto c = CopiedDisks::open(dst.path);
  ASSERT_TRUE(c);
  (*c)->set_spec(spec);
  EXPECT_FALSE((*c)->set_size(1, 4096));
  EXPECT_FALSE(CopiedDisks::open(dst.path + "/a.raw"));
}

}  // namespace copy_disks_test
}  // namespace vessel::vmm::migration
