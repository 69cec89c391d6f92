// crash_point(): dies only where VESSEL_CRASH_AT says. Each case is a death test
// in the "threadsafe" style: the child re-executes this binary for that test alone,
// so its crash_point() reads the environment the case sets (the environment is read
// once per process, and earlier tests in this binary may have called it already).
#include "common/crash_point.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace vessel {
namespace {

// In the child: runs the points a, b, a, c with VESSEL_CRASH_AT=`at` (and
// VESSEL_CRASH_TRACE=`trace`), writing an "x" to stderr after each, then exits 0.
void run_points(const char* at, const char* trace) {
  if (at != nullptr) setenv("VESSEL_CRASH_AT", at, 1);
  if (trace != nullptr) setenv("VESSEL_CRASH_TRACE", trace, 1);
  for (const char* p : {"a", "b", "a", "c"}) {
    crash_point(p);
    std::fputs("x", stderr);
  }
  std::fflush(stderr);
  _exit(0);
}

class CrashPoint : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

const auto kKilled = ::testing::KilledBySignal(SIGKILL);
const auto kRanThrough = ::testing::ExitedWithCode(0);

TEST_F(CrashPoint, OffWhenUnset) { EXPECT_EXIT(run_points(nullptr, nullptr), kRanThrough, "^xxxx$"); }

TEST_F(CrashPoint, ByName) {
  EXPECT_EXIT(run_points("b", nullptr), kKilled, "^x$");
  EXPECT_EXIT(run_points("c", nullptr), kKilled, "^xxx$");
  EXPECT_EXIT(run_points("nowhere", nullptr), kRanThrough, "^xxxx$");
}

TEST_F(CrashPoint, ByNameAndHit) {
  EXPECT_EXIT(run_points("a#2", nullptr), kKilled, "^xx$");
  EXPECT_EXIT(run_points("a#3", nullptr), kRanThrough, "^xxxx$");
}

TEST_F(CrashPoint, ByOrdinal) {
  EXPECT_EXIT(run_points("1", nullptr), kKilled, "^$");
  EXPECT_EXIT(run_points("4", nullptr), kKilled, "^xxx$");
  EXPECT_EXIT(run_points("5", nullptr), kRanThrough, "^xxxx$");
}

TEST_F(CrashPoint, TraceListsPointsWithoutKilling) {
  // The child runs this body again: it takes the parent's path from the environment.
  const char* inherited = std::getenv("VESSEL_TEST_CRASH_TRACE");
  std::string trace = inherited ? inherited : ::testing::TempDir() + "crash_trace_" + std::to_string(getpid());
  if (!inherited) {
    setenv("VESSEL_TEST_CRASH_TRACE", trace.c_str(), 1);
    unlink(trace.c_str());
  }
  EXPECT_EXIT(run_points(nullptr, trace.c_str()), kRanThrough, "^xxxx$");
  std::ifstream in(trace);
  std::string all, line;
  while (std::getline(in, line)) all += line + ",";
  EXPECT_EQ(all, "a,b,a,c,");
  unlink(trace.c_str());
  unsetenv("VESSEL_TEST_CRASH_TRACE");
}

}  // namespace
}  // namespace vessel
