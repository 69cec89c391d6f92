#include "image/overlay.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"

namespace vessel::image {
namespace {

class OverlayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-overlay-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = Store::open(dir_ + "/store");
    ASSERT_TRUE(s.ok());
    store_.emplace(std::move(*s));
  }
  void TearDown() override { (void)remove_tree(dir_); }
  std::string dir_;
  std::optional<Store> store_;
};

Digest digest_of(char c) { return Digest{std::string(64, c)}; }

bool exists_no_follow(const std::string& p) {
  struct stat st{};
  return ::lstat(p.c_str(), &st) == 0;
}

TEST_F(OverlayTest, RefusesBadArgumentsBeforeMounting) {
  std::string d = dir_;
  auto rel = mount_layers(*store_, {}, "upper", d + "/w", d + "/t", MS_NODEV);
  ASSERT_FALSE(rel.ok());
  EXPECT_NE(rel.error().message().find("\"upper\" is not an absolute path"), std::string::npos);
  auto comma = mount_layers(*store_, {}, d + "/u,p", d + "/w", d + "/t", MS_NODEV);
  ASSERT_FALSE(comma.ok());
  EXPECT_NE(comma.error().message().find("u,p"), std::string::npos);
  std::vector<Digest> many(501, digest_of('a'));
  auto big = mount_layers(*store_, many, d + "/u", d + "/w", d + "/t", MS_NODEV);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message().find("501 layers"), std::string::npos);
  auto missing = mount_layers(*store_, {digest_of('b')}, d + "/u", d + "/w", d + "/t", MS_NODEV);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message().find("sha256:" + std::string(64, 'b') + " is missing"), std::string::npos)
      << missing.error().message();
}

TEST_F(OverlayTest, RemoveLayerLinksRemovesOnlyThatLayersLinks) {
  std::string l = store_->root() + "/l";
  EXPECT_TRUE(remove_layer_links(*store_, digest_of('a')).ok());  // no l/ yet: fine
  ASSERT_TRUE(mkdir_p(l).ok());
  ASSERT_EQ(::symlink(("../layers/" + std::string(64, 'a')).c_str(), (l + "/qqqqqq").c_str()), 0);
  ASSERT_EQ(::symlink(("../layers/" + std::string(64, 'a')).c_str(), (l + "/qqqqqqq").c_str()), 0);
  ASSERT_EQ(::symlink(("../layers/" + std::string(64, 'c')).c_str(), (l + "/zzzzzz").c_str()), 0);
  ASSERT_TRUE(mkdir_p(l + "/dir").ok());
  EXPECT_TRUE(remove_layer_links(*store_, digest_of('a')).ok());
  EXPECT_FALSE(exists_no_follow(l + "/qqqqqq"));
  EXPECT_FALSE(exists_no_follow(l + "/qqqqqqq"));
  EXPECT_TRUE(exists_no_follow(l + "/zzzzzz"));
  EXPECT_TRUE(path_exists(l + "/dir"));
}

}  // namespace
}  // namespace vessel::image
