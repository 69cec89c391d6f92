// events: Go durations and the event lines.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "container/events.h"

namespace vessel::container {
namespace {

using namespace std::chrono;

TEST(ParseDuration, GoSyntax) {
  EXPECT_EQ(*parse_duration("5s"), seconds(5));
  EXPECT_EQ(*parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(*parse_duration("1m"), minutes(1));
  EXPECT_EQ(*parse_duration("1m30s"), seconds(90));
  EXPECT_EQ(*parse_duration("1.5h"), minutes(90));
  EXPECT_EQ(*parse_duration("100us"), microseconds(100));
  EXPECT_EQ(*parse_duration("7ns"), nanoseconds(7));
  EXPECT_EQ(*parse_duration("0.25s"), milliseconds(250));
}

TEST(ParseDuration, RejectsJunk) {
  for (const char* s : {"", "5", "s", "5x", "1..2s", "-1s", "5 s"}) EXPECT_FALSE(parse_duration(s)) << s;
}

TEST(EventLines, RuncShape) {
  auto oom = nlohmann::json::parse(oom_event("c1"));
  EXPECT_EQ(oom, nlohmann::json({{"type", "oom"}, {"id", "c1"}}));
  cgroups::Stats s;
  s.memory.usage.usage = 42;
  auto st = nlohmann::json::parse(stats_event("c1", s));
  EXPECT_EQ(st["type"], "stats");
  EXPECT_EQ(st["id"], "c1");
  EXPECT_EQ(st["data"]["memory"]["usage"]["usage"], 42);
}

}  // namespace
}  // namespace vessel::container
