// The pure parts of the builder's sources: clean paths, .dockerignore rules,
// matching and hashing in a temp context, and cache keys.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "image/build/cache.h"
#include "image/build/sources.h"

namespace vessel::image::build {
namespace {

TEST(CleanPath, ResolvesDotsWithoutLeavingTheRoot) {
  EXPECT_EQ(clean_path("/a/./b//c/"), "/a/b/c");
  EXPECT_EQ(clean_path("/a/../../b"), "/b");
  EXPECT_EQ(clean_path("a/../../b"), "../b");
  EXPECT_EQ(clean_path("./"), ".");
  EXPECT_EQ(clean_path("/"), "/");
}

TEST(IgnoreRules, LastMatchWinsAndDirectoriesCoverTheirContents) {
  auto r = IgnoreRules::parse("# comment\n*.log\nbuild/\n!build/keep.txt\n**/secret\n/docs/*.md\n");
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_TRUE(r->excluded("x.log"));
  EXPECT_FALSE(r->excluded("sub/x.log"));  // "*" does not cross "/"
  EXPECT_TRUE(r->excluded("build"));
  EXPECT_TRUE(r->excluded("build/out/a.o"));
  EXPECT_FALSE(r->excluded("build/keep.txt"));
  EXPECT_TRUE(r->excluded("secret"));
  EXPECT_TRUE(r->excluded("a/b/secret"));
  EXPECT_TRUE(r->excluded("a/b/secret/inner"));
  EXPECT_TRUE(r->excluded("docs/readme.md"));
  EXPECT_FALSE(r->excluded("docs/sub/readme.md"));
  EXPECT_FALSE(r->excluded("main.c"));
  EXPECT_FALSE(r->excluded(""));
}

class SourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vessel-sources.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(mkdir_p(dir_ + "/src/sub").ok());
    ASSERT_TRUE(write_file(dir_ + "/src/a.c", "int a;").ok());
    ASSERT_TRUE(write_file(dir_ + "/src/b.c", "int b;").ok());
    ASSERT_TRUE(write_file(dir_ + "/src/sub/c.h", "#pragma once").ok());
    ASSERT_TRUE(write_file(dir_ + "/notes.log", "x").ok());
    ASSERT_TRUE(write_file(dir_ + "/.dockerignore", "*.log\n").ok());
    ASSERT_EQ(::symlink("/etc", (dir_ + "/escape").c_str()), 0);
  }
  void TearDown() override { (void)remove_tree(dir_); }
  std::string dir_;
};

TEST_F(SourcesTest, GlobsMatchSortedAndSkipIgnoredFiles) {
  auto ctx = SourceRoot::context(dir_);
  ASSERT_TRUE(ctx.ok()) << ctx.error().message();
  auto m = ctx->match("src/*.c");
  ASSERT_TRUE(m.ok()) << m.error().message();
  EXPECT_EQ(*m, (std::vector<std::string>{"src/a.c", "src/b.c"}));
  EXPECT_EQ(*ctx->match("/src/sub/../a.c"), std::vector<std::string>{"src/a.c"});
  EXPECT_EQ(*ctx->match("."), std::vector<std::string>{""});
  EXPECT_FALSE(ctx->match("notes.log").ok());  // ignored
  EXPECT_FALSE(ctx->match("../x").ok());
  EXPECT_FALSE(ctx->match("nothing*").ok());
  // The symlink resolves inside the context, where there is no etc/passwd.
  EXPECT_FALSE(ctx->match("escape/passwd").ok());
}

TEST_F(SourcesTest, HashFollowsContentNotTimes) {
  auto ctx = SourceRoot::context(dir_);
  ASSERT_TRUE(ctx.ok());
  auto h1 = ctx->hash({"src"});
  ASSERT_TRUE(h1.ok()) << h1.error().message();
  ::utimensat(AT_FDCWD, (dir_ + "/src/a.c").c_str(), nullptr, 0);
  EXPECT_EQ(ctx->hash({"src"})->hex, h1->hex);
  ASSERT_TRUE(write_file(dir_ + "/src/sub/c.h", "#pragma twice").ok());
  EXPECT_NE(ctx->hash({"src"})->hex, h1->hex);
  // An ignored file does not count.
  auto h2 = ctx->hash({""});
  ASSERT_TRUE(write_file(dir_ + "/other.log", "y").ok());
  EXPECT_EQ(ctx->hash({""})->hex, h2->hex);
}

TEST(StepKey, ChainsParentAndStep) {
  Digest root = sha256("FROM x");
  EXPECT_EQ(step_key(root, "RUN a").hex, step_key(root, "RUN a").hex);
  EXPECT_NE(step_key(root, "RUN a").hex, step_key(root, "RUN b").hex);
  EXPECT_NE(step_key(step_key(root, "ENV A=1"), "RUN a").hex, step_key(root, "RUN a").hex);
}

}  // namespace
}  // namespace vessel::image::build
