#include "common/strings.h"
#include "common/ram_size.h"

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
}

TEST(Strings, RamSizesAsRunc) {
  EXPECT_EQ(parse_ram_size("50M"), 50LL << 20);
  EXPECT_EQ(parse_ram_size("50MiB"), 50LL << 20);
  EXPECT_EQ(parse_ram_size("50mb"), 50LL << 20);
  EXPECT_EQ(parse_ram_size("512 k"), 512LL << 10);
  EXPECT_EQ(parse_ram_size("1g"), 1LL << 30);
  EXPECT_EQ(parse_ram_size("1.5M"), 3LL << 19);
  EXPECT_EQ(parse_ram_size("52428800"), 52428800);
  EXPECT_EQ(parse_ram_size("100b"), 100);
  EXPECT_FALSE(parse_ram_size("50X"));
  EXPECT_FALSE(parse_ram_size("M"));
  EXPECT_FALSE(parse_ram_size("-1"));
  EXPECT_FALSE(parse_ram_size("99999999999P"));
  EXPECT_FALSE(parse_size("99999999999999999999G"));
}

TEST(Strings, JsonQuoteEscapes) { EXPECT_EQ(json_quote("a\"b\\\n\x01"), "\"a\\\"b\\\\\\n\\u0001\""); }

}  // namespace
}  // namespace vessel
