#include "image/layer.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>

#include "common/fs.h"
#include "unit/image/tar_builder.h"

namespace vessel::image {
namespace {

using vessel::testing::TarBuilder;

class LayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-layer-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    layer_ = dir_ + "/layer";
    outside_ = dir_ + "/outside";
    ASSERT_EQ(::mkdir(layer_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir(outside_.c_str(), 0755), 0);
    // A layer directory nested two levels down, so "../escape" and "../../x" have somewhere to go.
    layer_ = layer_ + "/root";
    ASSERT_EQ(::mkdir(layer_.c_str(), 0755), 0);
  }
  void TearDown() override { (void)remove_tree(dir_); }

  Status unpack(const std::string& tar) {
    UniqueFd fd(::open(tar.c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd dir(::open(layer_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    return unpack_tar(fd.get(), dir.get());
  }
  // Every name under dir_ except inside the layer (nothing may appear there).
  std::vector<std::string> outside_entries() {
    std::vector<std::string> names;
    for (auto* d : {"", "/layer", "/outside"}) {
      auto out = dir_ + d;
      std::unique_ptr<DIR, int (*)(DIR*)> dd(::opendir(out.c_str()), ::closedir);
      while (dirent* e = ::readdir(dd.get())) {
        std::string n = e->d_name;
        if (n != "." && n != ".." && n != "layer" && n != "outside" && n != "root" && n.find(".tar") == std::string::npos)
          names.push_back(std::string(d) + "/" + n);
      }
    }
    return names;
  }
  void expect_rejected(const std::string& tar, const std::string& entry) {
    auto st = unpack(tar);
    ASSERT_FALSE(st.ok());
    EXPECT_NE(st.error().message().find("\"" + entry + "\""), std::string::npos) << st.error().message();
    EXPECT_TRUE(outside_entries().empty());
  }

  std::string dir_, layer_, outside_;
};

TEST(EntryComponents, Normalises) {
  auto c = entry_components("./a//b/./c/");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(entry_components("./")->empty());
  EXPECT_FALSE(entry_components("/etc/passwd").ok());
  EXPECT_FALSE(entry_components("a/../../b").ok());
}

TEST_F(LayerTest, UnpacksFilesDirsLinks) {
  std::string tar = dir_ + "/ok.tar";
  TarBuilder(tar, "gzip").dir("./bin").file("./bin/tool", "#!/bin/sh\n", 0755).symlink("./bin/sh", "/bin/tool")
      .hardlink("./bin/tool2", "./bin/tool").file("etc/hostname", "box\n");
  ASSERT_TRUE(unpack(tar).ok());
  EXPECT_EQ(*read_file(layer_ + "/bin/tool"), "#!/bin/sh\n");
  EXPECT_EQ(*read_file(layer_ + "/bin/tool2"), "#!/bin/sh\n");
  EXPECT_EQ(*read_file(layer_ + "/etc/hostname"), "box\n");
  char buf[64] = {};
  ASSERT_GT(::readlink((layer_ + "/bin/sh").c_str(), buf, sizeof buf), 0);
  EXPECT_STREQ(buf, "/bin/tool");
  struct stat st{};
  ASSERT_EQ(::stat((layer_ + "/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST_F(LayerTest, ZstdAndDiffId) {
  std::string plain = dir_ + "/p.tar", zst = dir_ + "/z.tar";
  TarBuilder(plain).file("a", "hello");
  TarBuilder(zst, "zstd").file("a", "hello");
  UniqueFd p(::open(plain.c_str(), O_RDONLY)), z(::open(zst.c_str(), O_RDONLY));
  EXPECT_EQ(*detect_compression(z.get()), Compression::kZstd);
  EXPECT_EQ(*detect_compression(p.get()), Compression::kNone);
  auto dp = diff_id(p.get()), dz = diff_id(z.get());
  ASSERT_TRUE(dp.ok() && dz.ok());
  EXPECT_EQ(dp->hex, sha256(*read_file(plain)).hex);
  EXPECT_EQ(dz->hex, dp->hex);  // same tar inside
  ASSERT_TRUE(unpack(zst).ok());
  EXPECT_EQ(*read_file(layer_ + "/a"), "hello");
}

TEST_F(LayerTest, WhiteoutsBecomeOverlayWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "trusted.* xattrs need root";
  std::string tar = dir_ + "/wh.tar";
  TarBuilder(tar).dir("etc").file("etc/.wh.passwd", "").dir("var").file("var/.wh..wh..opq", "").file("var/keep", "k");
  ASSERT_TRUE(unpack(tar).ok());
  struct stat st{};
  ASSERT_EQ(::lstat((layer_ + "/etc/passwd").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_FALSE(path_exists(layer_ + "/etc/.wh.passwd"));
  char v[4] = {};
  EXPECT_EQ(::getxattr((layer_ + "/var").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(path_exists(layer_ + "/var/.wh..wh..opq"));
  EXPECT_EQ(*read_file(layer_ + "/var/keep"), "k");
}

TEST_F(LayerTest, RejectsDotDot) {
  std::string tar = dir_ + "/dotdot.tar";
  TarBuilder(tar).file("../escape", "x").file("../../outside/escape", "x");
  expect_rejected(tar, "../escape");
}

TEST_F(LayerTest, RejectsAbsolute) {
  std::string tar = dir_ + "/abs.tar";
  TarBuilder(tar).file(outside_ + "/abs", "x");
  expect_rejected(tar, outside_ + "/abs");
  EXPECT_FALSE(path_exists(outside_ + "/abs"));
}

TEST_F(LayerTest, RejectsWritingThroughSymlink) {
  std::string tar = dir_ + "/symlink.tar";
  TarBuilder(tar).symlink("link", outside_).file("link/passwd", "owned");
  expect_rejected(tar, "link/passwd");
  EXPECT_FALSE(path_exists(outside_ + "/passwd"));
  // The same with an absolute target that would escape if followed on the host.
  std::string tar2 = dir_ + "/symlink2.tar";
  TarBuilder(tar2).symlink("etc", "/etc").file("etc/passwd", "owned");
  expect_rejected(tar2, "etc/passwd");
}

TEST_F(LayerTest, RejectsHardlinkOut) {
  std::string tar = dir_ + "/hardlink.tar";
  TarBuilder(tar).hardlink("passwd", "/etc/passwd");
  expect_rejected(tar, "passwd");
  EXPECT_FALSE(path_exists(layer_ + "/passwd"));
  std::string tar2 = dir_ + "/hardlink2.tar";
  TarBuilder(tar2).hardlink("shadow", "../../outside/x");
  expect_rejected(tar2, "shadow");
}

TEST_F(LayerTest, RejectsDevices) {
  std::string tar = dir_ + "/dev.tar";
  TarBuilder(tar).chardev("mem", 1, 1);
  expect_rejected(tar, "mem");
  EXPECT_FALSE(path_exists(layer_ + "/mem"));
}

}  // namespace
}  // namespace vessel::image
