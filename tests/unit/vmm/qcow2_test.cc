// qcow2 overlays made by qemu-img: reads through the backing file, writes
// allocate clusters, and `qemu-img check` / `convert` agree with us.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/fs.h"
#include "vmm/disk/qcow2.h"
#include "vmm/disk/qcow2_create.h"
#include "vmm/disk/raw.h"

namespace vessel::vmm::disk {
namespace {

constexpr uint64_t kSize = 4 << 20;

std::vector<uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

struct Qcow2Test : ::testing::Test {
  std::string dir;
  std::vector<uint8_t> expect;

  void SetUp() override {
    if (std::system("qemu-img --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "qemu-img not installed";
    char tmpl[] = "/tmp/vessel-qcow2-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    dir = tmpl;
    expect.resize(kSize);
    for (size_t i = 0; i < kSize; ++i) expect[i] = static_cast<uint8_t>((i * 7) >> 9);
    std::ofstream(dir + "/base.raw", std::ios::binary).write(reinterpret_cast<const char*>(expect.data()), kSize);
    ASSERT_EQ(sh("qemu-img create -q -f qcow2 -b base.raw -F raw overlay.qcow2"), 0);
  }
  void TearDown() override {
    if (!dir.empty()) (void)remove_tree(dir);
  }
  int sh(const std::string& cmd) { return std::system(("cd " + dir + " && " + cmd).c_str()); }
  std::unique_ptr<DiskImage> open(bool ro = false) {
    auto d = open_disk(dir + "/overlay.qcow2", ro);
    EXPECT_TRUE(d.ok()) << d.error().message();
    return std::move(d).value();
  }
  void write(DiskImage& d, uint64_t off, size_t len, uint8_t seed) {
    std::vector<uint8_t> b(len);
    for (size_t i = 0; i < len; ++i) b[i] = static_cast<uint8_t>(seed + i);
    ASSERT_TRUE(d.write(off, b).ok());
    std::copy(b.begin(), b.end(), expect.begin() + static_cast<long>(off));
  }
  void check_all(DiskImage& d) {
    std::vector<uint8_t> got(kSize);
    ASSERT_TRUE(d.read(0, got).ok());
    EXPECT_TRUE(got == expect);
  }
};

TEST_F(Qcow2Test, ReadsThroughTheBackingFile) {
  auto d = open(true);
  EXPECT_EQ(d->size(), kSize);
  check_all(*d);
  std::vector<uint8_t> b(10);
  EXPECT_FALSE(d->read(kSize - 5, b).ok());
  EXPECT_FALSE(d->write(0, b).ok());  // read-only
}

TEST_F(Qcow2Test, WritesAllocateAndQemuImgAgrees) {
  {
    auto d = open();
    write(*d, 65536 + 100, 4096, 1);           // inside one cluster
    write(*d, 3 * 65536 - 512, 200000, 9);     // across several clusters
    write(*d, 65536 + 200, 10, 77);            // rewrite an allocated cluster in place
    write(*d, kSize - 512, 512, 3);            // the last sector
    ASSERT_TRUE(d->write_zeroes(2 << 20, 8192).ok());
    std::fill(expect.begin() + (2 << 20), expect.begin() + (2 << 20) + 8192, 0);
    ASSERT_TRUE(d->flush().ok());
    check_all(*d);
  }
  check_all(*open(true));  // persisted, read by a fresh instance
  EXPECT_EQ(sh("qemu-img check -q overlay.qcow2"), 0);
  ASSERT_EQ(sh("qemu-img convert -O raw overlay.qcow2 flat.raw"), 0);
  EXPECT_TRUE(slurp(dir + "/flat.raw") == expect);
  // The base image is untouched.
  auto base = slurp(dir + "/base.raw");
  ASSERT_EQ(base.size(), kSize);
  EXPECT_EQ(base[65536 + 100], static_cast<uint8_t>(((65536 + 100) * 7) >> 9));
}

TEST_F(Qcow2Test, AllocatesAfterTheLastUsedClusterNotTheFileEnd) {
  ASSERT_EQ(sh("truncate -s 8M overlay.qcow2"), 0);  // trailing space, as on a block device
  {
    auto d = open();
    write(*d, 0, 100000, 5);
  }
  EXPECT_EQ(sh("qemu-img check -q overlay.qcow2"), 0);
  ASSERT_EQ(sh("qemu-img convert -O raw overlay.qcow2 flat.raw"), 0);
  EXPECT_TRUE(slurp(dir + "/flat.raw") == expect);
  EXPECT_LE(slurp(dir + "/overlay.qcow2").size(), 8u << 20);
}

TEST_F(Qcow2Test, StandaloneImageWithoutBacking) {
  ASSERT_EQ(sh("qemu-img create -q -f qcow2 plain.qcow2 1M"), 0);
  auto d = open_disk(dir + "/plain.qcow2", false);
  ASSERT_TRUE(d.ok());
  std::vector<uint8_t> z(4096, 1);
  ASSERT_TRUE((*d)->read(0, z).ok());
  EXPECT_EQ(z[100], 0);
  std::vector<uint8_t> w(70000, 0x5a);
  ASSERT_TRUE((*d)->write(1000, w).ok());
  d->reset();
  EXPECT_EQ(sh("qemu-img check -q plain.qcow2"), 0);
  EXPECT_EQ(sh("qemu-img convert -O raw plain.qcow2 p.raw"), 0);
  auto flat = slurp(dir + "/p.raw");
  EXPECT_EQ(flat[1000], 0x5a);
  EXPECT_EQ(flat[70999], 0x5a);
  EXPECT_EQ(flat[71000], 0);
}

// The overlays `vm clone` makes: our own writer, read by us and by qemu-img.
TEST_F(Qcow2Test, OverlayWeCreateReadsThroughAndQemuImgAgrees) {
  ASSERT_TRUE(create_qcow2_overlay(dir + "/mine.qcow2", dir + "/base.raw").ok());
  EXPECT_EQ(sh("qemu-img check -q mine.qcow2"), 0);
  EXPECT_EQ(sh("qemu-img info mine.qcow2 | grep -q 'backing file format: raw'"), 0);
  {
    auto d = open_disk(dir + "/mine.qcow2", false);
    ASSERT_TRUE(d.ok()) << d.error().message();
    EXPECT_EQ((*d)->size(), kSize);
    check_all(**d);
    write(**d, 12345, 70000, 4);
    write(**d, kSize - 4096, 4096, 8);
    check_all(**d);
  }
  EXPECT_EQ(sh("qemu-img check -q mine.qcow2"), 0);
  ASSERT_EQ(sh("qemu-img convert -O raw mine.qcow2 flat.raw"), 0);
  EXPECT_TRUE(slurp(dir + "/flat.raw") == expect);
  // Over a qcow2 image (a clone of a clone), and refusals.
  ASSERT_TRUE(create_qcow2_overlay(dir + "/second.qcow2", dir + "/mine.qcow2").ok());
  EXPECT_EQ(sh("qemu-img info second.qcow2 | grep -q 'backing file format: qcow2'"), 0);
  auto d2 = open_disk(dir + "/second.qcow2", true);
  ASSERT_TRUE(d2.ok()) << d2.error().message();
  check_all(**d2);
  EXPECT_FALSE(create_qcow2_overlay(dir + "/mine.qcow2", dir + "/base.raw").ok());  // exists
  EXPECT_FALSE(create_qcow2_overlay(dir + "/rel.qcow2", "base.raw").ok());         // relative
  auto e = create_qcow2_overlay(dir + "/x.qcow2", dir + "/missing.raw");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message().find("missing.raw"), std::string::npos) << e.error().message();
}

TEST(Qcow2Header, RejectsGarbageAndUnsupported) {
  std::vector<uint8_t> b(512, 0);
  EXPECT_FALSE(parse_qcow2_header(b).ok());
  b[0] = 'Q'; b[1] = 'F'; b[2] = 'I'; b[3] = 0xfb;
  b[7] = 3;    // version 3
  b[23] = 16;  // cluster_bits
  b[103] = 104;  // header_length
  b[99] = 4;   // refcount_order
  EXPECT_TRUE(parse_qcow2_header(b).ok());
  b[35] = 1;  // encrypted
  EXPECT_FALSE(parse_qcow2_header(b).ok());
  b[35] = 0;
  b[79] = 1;  // incompatible: dirty
  EXPECT_FALSE(parse_qcow2_header(b).ok());
  b[79] = 0;
  b[23] = 40;  // cluster_bits out of range
  EXPECT_FALSE(parse_qcow2_header(b).ok());
}

}  // namespace
}  // namespace vessel::vmm::disk
