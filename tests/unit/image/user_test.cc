#include "image/user.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"

namespace vessel::image {
namespace {

const std::string kPasswd =
    "# comment\n"
    "root:x:0:0:root:/root:/bin/sh\n"
    "daemon:x:1:1::/:/bin/false\n"
    "\n"
    "broken line\n"
    "bad:x:notanumber:1::/:/bin/false\n"
    "app:x:1000:1000:App:/home/app:/bin/sh\n"
    "nogroups:x:1001:1001::/:/bin/sh\n"
    "+nis\n";

const std::string kGroup =
    "root:x:0:root\n"
    "wheel:x:10:root, app\n"
    "app:x:1000:\n"
    "audio:x:29:app,daemon\n"
    "again:x:29:app\n"  // same gid twice: listed once
    "staff:x:50\n"
    "bad:x:nan:app\n";

ResolvedUser must(const Result<ResolvedUser>& r) {
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
  return r.ok() ? *r : ResolvedUser{};
}

std::string err(const Result<ResolvedUser>& r) {
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message();
}

TEST(ResolveUser, EmptyIsRootWithItsGroups) {
  auto u = must(resolve_user_from("", kPasswd, kGroup));
  EXPECT_EQ(u.uid, 0u);
  EXPECT_EQ(u.gid, 0u);
  EXPECT_EQ(u.additional_gids, (std::vector<uint32_t>{0, 10}));
  auto bare = must(resolve_user_from("", "", ""));
  EXPECT_EQ(bare.uid, 0u);
  EXPECT_EQ(bare.gid, 0u);
  EXPECT_TRUE(bare.additional_gids.empty());
}

TEST(ResolveUser, Name) {
  auto u = must(resolve_user_from("app", kPasswd, kGroup));
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.gid, 1000u);
  EXPECT_EQ(u.additional_gids, (std::vector<uint32_t>{10, 29}));  // member lists trimmed, gid 29 once
  auto n = must(resolve_user_from("nogroups", kPasswd, kGroup));
  EXPECT_EQ(n.uid, 1001u);
  EXPECT_EQ(n.gid, 1001u);
  EXPECT_TRUE(n.additional_gids.empty());
}

TEST(ResolveUser, Uid) {
  auto known = must(resolve_user_from("1000", kPasswd, kGroup));  // in passwd: its gid and groups
  EXPECT_EQ(known.uid, 1000u);
  EXPECT_EQ(known.gid, 1000u);
  EXPECT_EQ(known.additional_gids, (std::vector<uint32_t>{10, 29}));
  auto unknown = must(resolve_user_from("4242", kPasswd, kGroup));  // not in passwd: gid 0
  EXPECT_EQ(unknown.uid, 4242u);
  EXPECT_EQ(unknown.gid, 0u);
  EXPECT_TRUE(unknown.additional_gids.empty());
  auto none = must(resolve_user_from("4242", "", ""));  // no passwd at all is fine for numbers
  EXPECT_EQ(none.uid, 4242u);
  EXPECT_EQ(none.gid, 0u);
}

TEST(ResolveUser, ExplicitGroupReplacesPrimaryAndSupplementary) {
  auto ng = must(resolve_user_from("app:staff", kPasswd, kGroup));
  EXPECT_EQ(ng.uid, 1000u);
  EXPECT_EQ(ng.gid, 50u);
  EXPECT_TRUE(ng.additional_gids.empty());
  auto ug = must(resolve_user_from("1000:7", kPasswd, kGroup));
  EXPECT_EQ(ug.uid, 1000u);
  EXPECT_EQ(ug.gid, 7u);
  EXPECT_TRUE(ug.additional_gids.empty());
  auto ng2 = must(resolve_user_from("app:29", kPasswd, kGroup));
  EXPECT_EQ(ng2.uid, 1000u);
  EXPECT_EQ(ng2.gid, 29u);
  auto ug2 = must(resolve_user_from("4242:audio", kPasswd, kGroup));
  EXPECT_EQ(ug2.uid, 4242u);
  EXPECT_EQ(ug2.gid, 29u);
  auto nums = must(resolve_user_from("5:6", "", ""));
  EXPECT_EQ(nums.uid, 5u);
  EXPECT_EQ(nums.gid, 6u);
}

TEST(ResolveUser, UnknownNamesAreErrorsNamingThemAndTheFile) {
  auto e = err(resolve_user_from("nobody", kPasswd, kGroup));
  EXPECT_NE(e.find("\"nobody\""), std::string::npos) << e;
  EXPECT_NE(e.find("/etc/passwd"), std::string::npos) << e;
  auto g = err(resolve_user_from("app:nogroup", kPasswd, kGroup));
  EXPECT_NE(g.find("\"nogroup\""), std::string::npos) << g;
  EXPECT_NE(g.find("/etc/group"), std::string::npos) << g;
  // Malformed lines do not match.
  EXPECT_FALSE(resolve_user_from("bad", kPasswd, kGroup).ok());
  EXPECT_FALSE(resolve_user_from("app:bad", kPasswd, kGroup).ok());
  EXPECT_FALSE(resolve_user_from("broken line", kPasswd, kGroup).ok());
  EXPECT_FALSE(resolve_user_from("+nis", kPasswd, kGroup).ok());
}

TEST(ResolveUser, MalformedSpecs) {
  for (const char* s : {":", ":0", "app:", "a:b:c", "4294967295", "1:4294967295", "99999999999999999999"})
    EXPECT_FALSE(resolve_user_from(s, kPasswd, kGroup).ok()) << s;
}

class ResolveUserInRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-user-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(mkdir_p(dir_ + "/root/etc").ok());
  }
  void TearDown() override { (void)remove_tree(dir_); }
  Result<ResolvedUser> resolve(const std::string& user) {
    auto fd = open_file(dir_ + "/root", O_PATH | O_DIRECTORY);
    if (!fd) return std::move(fd).error();
    return resolve_user(fd->get(), user);
  }
  std::string dir_;
};

TEST_F(ResolveUserInRoot, ReadsTheImageFiles) {
  ASSERT_TRUE(write_file(dir_ + "/root/etc/passwd", kPasswd).ok());
  ASSERT_TRUE(write_file(dir_ + "/root/etc/group", kGroup).ok());
  auto u = must(resolve("app"));
  EXPECT_EQ(u.uid, 1000u);
  EXPECT_EQ(u.additional_gids, (std::vector<uint32_t>{10, 29}));
}

TEST_F(ResolveUserInRoot, MissingFiles) {
  EXPECT_EQ(must(resolve("7:8")).gid, 8u);
  EXPECT_EQ(must(resolve("")).uid, 0u);
  auto e = err(resolve("app"));
  EXPECT_NE(e.find("no /etc/passwd"), std::string::npos) << e;
  ASSERT_TRUE(write_file(dir_ + "/root/etc/passwd", kPasswd).ok());
  auto g = err(resolve("app:staff"));
  EXPECT_NE(g.find("no /etc/group"), std::string::npos) << g;
}

TEST_F(ResolveUserInRoot, SymlinksResolveInsideTheRoot) {
  // An absolute symlink must not reach the host's /etc/passwd.
  ASSERT_TRUE(write_file(dir_ + "/root/etc/real", "app:x:77:88::/:/bin/sh\n").ok());
  ASSERT_EQ(::symlink("/etc/real", (dir_ + "/root/etc/passwd").c_str()), 0);
  ASSERT_EQ(::symlink("/../../../../etc/gshadow-not-here", (dir_ + "/root/etc/group").c_str()), 0);
  auto u = must(resolve("app"));
  EXPECT_EQ(u.uid, 77u);
  EXPECT_EQ(u.gid, 88u);
  EXPECT_TRUE(u.additional_gids.empty());  // the dangling group link counts as no /etc/group
  EXPECT_FALSE(resolve("root").ok());        // the host's root is not seen
  // A link to itself is an error, not "no file".
  ASSERT_EQ(::unlink((dir_ + "/root/etc/group").c_str()), 0);
  ASSERT_EQ(::symlink("/../etc/group", (dir_ + "/root/etc/group").c_str()), 0);
  auto e = err(resolve("app"));
  EXPECT_NE(e.find("/etc/group"), std::string::npos) << e;
}

TEST_F(ResolveUserInRoot, RefusesFifosAndDirectories) {
  ASSERT_EQ(::mkfifo((dir_ + "/root/etc/passwd").c_str(), 0644), 0);
  auto e = err(resolve("app"));  // returns at once: no writer is awaited
  EXPECT_NE(e.find("not a regular file"), std::string::npos) << e;
  ASSERT_EQ(::unlink((dir_ + "/root/etc/passwd").c_str()), 0);
  ASSERT_EQ(::mkdir((dir_ + "/root/etc/passwd").c_str(), 0755), 0);
  EXPECT_FALSE(resolve("app").ok());
}

}  // namespace
}  // namespace vessel::image
