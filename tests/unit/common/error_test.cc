#include "common/error.h"

#include <gtest/gtest.h>

#include "common/fs.h"

namespace vessel {
namespace {

Result<int> half(int x) {
  if (x % 2) return Error::invalid("odd");
  return x / 2;
}

Result<int> quarter(int x) {
  int h = TRYC(half(x), "first half");
  return TRY(half(h));
}

TEST(Error, TryPropagatesWithContext) {
  EXPECT_EQ(*quarter(8), 2);
  auto r = quarter(6);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "odd");
  auto r2 = quarter(5);
  ASSERT_FALSE(r2);
  EXPECT_EQ(r2.error().message(), "first half: odd");
  EXPECT_EQ(r2.error().code(), EINVAL);
}

Result<std::string> text(bool fail) {
  if (fail) return Error::invalid("no text");
  return std::string(1000, 'x');  // heap-allocated: a dangling reference would show
}

Result<size_t> length_with_context(bool fail) {
  std::string t = TRY(text(fail).context("read text"));
  return t.size();
}

TEST(Error, TryOverContextKeepsTheValueAlive) {
  EXPECT_EQ(*length_with_context(false), 1000u);
  auto r = length_with_context(true);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "read text: no text");
}

TEST(Error, FromErrnoNamesTheCall) {
  auto r = read_file("/nonexistent/vessel-test");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ENOENT);
  EXPECT_EQ(r.error().message(), "open /nonexistent/vessel-test: No such file or directory");
}

TEST(Fs, AbsolutePathNormalises) {
  EXPECT_EQ(absolute_path("/a//b/./c/../d"), "/a/b/d");
  EXPECT_EQ(absolute_path("/.."), "/");
  EXPECT_EQ(path_join("/a/", "/b"), "/a/b");
}

}  // namespace
}  // namespace vessel
