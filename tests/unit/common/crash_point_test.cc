// crash_point(): dies only where VESSEL_CRASH_AT says. Each case runs in a
// forked child that sets the environment before its first crash_point() call
// (the environment is read once per process; this process never calls it).
#include "common/crash_point.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace vessel {
namespace {

// Runs the points a, b, a, c in a child with VESSEL_CRASH_AT=`at`; returns how
// many points it passed (0..4), or -1 when it died of SIGKILL before
// returning, with the number of points passed in `passed`.
int run_child(const char* at, const char* trace, int* passed) {
  int pipefd[2];
  if (pipe(pipefd) != 0) return -2;
  pid_t pid = fork();
  if (pid == 0) {
    close(pipefd[0]);
    if (at != nullptr) setenv("VESSEL_CRASH_AT", at, 1);
    if (trace != nullptr) setenv("VESSEL_CRASH_TRACE", trace, 1);
    const char* points[] = {"a", "b", "a", "c"};
    for (const char* p : points) {
      crash_point(p);
      (void)!write(pipefd[1], "x", 1);
    }
    _exit(0);
  }
  close(pipefd[1]);
  char buf[16];
  int n = 0;
  ssize_t r;
  while ((r = read(pipefd[0], buf, sizeof buf)) > 0) n += static_cast<int>(r);
  close(pipefd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  *passed = n;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return -1;
  return WIFEXITED(status) ? n : -3;
}

TEST(CrashPoint, OffWhenUnset) {
  int passed = 0;
  EXPECT_EQ(run_child(nullptr, nullptr, &passed), 4);
}

TEST(CrashPoint, ByName) {
  int passed = 0;
  EXPECT_EQ(run_child("b", nullptr, &passed), -1);
  EXPECT_EQ(passed, 1);
  EXPECT_EQ(run_child("c", nullptr, &passed), -1);
  EXPECT_EQ(passed, 3);
  EXPECT_EQ(run_child("nowhere", nullptr, &passed), 4);
}

TEST(CrashPoint, ByNameAndHit) {
  int passed = 0;
  EXPECT_EQ(run_child("a#2", nullptr, &passed), -1);
  EXPECT_EQ(passed, 2);
  EXPECT_EQ(run_child("a#3", nullptr, &passed), 4);
}

TEST(CrashPoint, ByOrdinal) {
  int passed = 0;
  EXPECT_EQ(run_child("1", nullptr, &passed), -1);
  EXPECT_EQ(passed, 0);
  EXPECT_EQ(run_child("4", nullptr, &passed), -1);
  EXPECT_EQ(passed, 3);
  EXPECT_EQ(run_child("5", nullptr, &passed), 4);
}

TEST(CrashPoint, TraceListsPointsWithoutKilling) {
  std::string trace = ::testing::TempDir() + "crash_trace_" + std::to_string(getpid());
  unlink(trace.c_str());
  int passed = 0;
  EXPECT_EQ(run_child(nullptr, trace.c_str(), &passed), 4);
  std::ifstream in(trace);
  std::string all, line;
  while (std::getline(in, line)) all += line + ",";
  EXPECT_EQ(all, "a,b,a,c,");
  unlink(trace.c_str());
}

}  // namespace
}  // namespace vessel
