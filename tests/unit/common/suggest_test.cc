#include "common/suggest.h"

#include <gtest/gtest.h>

namespace vessel {
namespace {

TEST(Suggest, EditDistanceCountsEachKindOfEditOnce) {
  EXPECT_EQ(edit_distance("start", "start"), 0u);
  EXPECT_EQ(edit_distance("strat", "start"), 1u);   // transposition
  EXPECT_EQ(edit_distance("stat", "start"), 1u);    // insertion
  EXPECT_EQ(edit_distance("startt", "start"), 1u);  // deletion
  EXPECT_EQ(edit_distance("stort", "start"), 1u);   // substitution
  EXPECT_EQ(edit_distance("", "run"), 3u);
  EXPECT_EQ(edit_distance("kill", ""), 4u);
  EXPECT_EQ(edit_distance("delete", "create"), 4u);  // d,e,l,e -> c,r,e,a
}

const std::vector<std::string> kVerbs = {"spec", "create", "run", "start", "exec", "state", "list",
                                         "kill", "pause", "resume", "update", "delete", "vm", "image"};

TEST(Suggest, ClosestMatchFindsTypos) {
  EXPECT_EQ(closest_match("strat", kVerbs), "start");
  EXPECT_EQ(closest_match("imgae", kVerbs), "image");
  EXPECT_EQ(closest_match("delte", kVerbs), "delete");
  EXPECT_EQ(closest_match("rnu", kVerbs), "run");
  EXPECT_EQ(closest_match("upd", kVerbs), "update");  // a unique prefix
}

TEST(Suggest, ClosestMatchRefusesFarOrAmbiguousWords) {
  EXPECT_EQ(closest_match("frobnicate", kVerbs), "");
  EXPECT_EQ(closest_match("xyz", kVerbs), "");
  EXPECT_EQ(closest_match("s", kVerbs), "");  // spec, start, state: no single prefix
  EXPECT_EQ(closest_match("", kVerbs), "");
}

TEST(Suggest, TiesGoToTheEarlierCandidate) {
  EXPECT_EQ(closest_match("stae", {"state", "stage"}), "state");
}

}  // namespace
}  // namespace vessel
