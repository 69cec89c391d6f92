#include "common/strings.h"

#include <gtest/gtest.h>

namespace vessel {
namespace {

TEST(Strings, CatJoinsStringsAndNumbers) { EXPECT_EQ(cat("a", 1, std::string("b"), 'c', -2), "a1bc-2"); }

TEST(Strings, SplitKeepsEmptyFields) {
  auto v = split("a::b", ':');
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[1], "");
  EXPECT_EQ(split("", ':').size(), 1u);
}

TEST(Strings, ParseIntegersRejectsJunk) {
  EXPECT_EQ(parse_u64("42"), 42u);
  EXPECT_FALSE(parse_u64("42x"));
  EXPECT_FALSE(parse_u64(""));
  EXPECT_FALSE(parse_u64("-1"));
  EXPECT_EQ(parse_i64("-7"), -7);
}

TEST(Strings, ParseSizeUnits) {
  EXPECT_EQ(parse_size("512M"), 512ULL << 20);
  EXPECT_EQ(parse_size("2G"), 2ULL << 30);
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("64KiB"), 64ULL << 10);
  EXPECT_FALSE(parse_size("12Q"));
  EXPECT_FALSE(parse_size("M"));
  EXPECT_FALSE(parse_size("99999999999999999999G"));
}

TEST(Strings, JsonQuoteEscapes) { EXPECT_EQ(json_quote("a\"b\\\n\x01"), "\"a\\\"b\\\\\\n\\u0001\""); }

}  // namespace
}  // namespace vessel
