#include "cgroups/freezer.h"

#include <chrono>
#include <thread>

#include "common/strings.h"

namespace vessel::cgroups {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kTimeout = std::chrono::seconds(5);

// Whether cgroup.events says "frozen <want>".
Result<bool> events_frozen(const CgroupDir& dir, bool want) {
  auto events = TRY(dir.read("cgroup.events"));
  for (const auto& line : split(events, '\n')) {
    if (starts_with(line, "frozen ")) return (trim(line.substr(7)) == "1") == want;
  }
  return Error::invalid(cat(dir.file("cgroup.events"), ": no \"frozen\" line (kernel older than 5.2?)"));
}

Status wait_v2(const CgroupDir& dir, bool want) {
  auto deadline = Clock::now() + kTimeout;
  auto delay = std::chrono::microseconds(100);
  while (!TRY(events_frozen(dir, want))) {
    if (Clock::now() >= deadline)
      return Error(ETIMEDOUT, cat("wait for ", dir.path(), " to be ", want ? "frozen" : "thawed"));
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::microseconds(50000));
  }
  return ok();
}

}  // namespace

Status freeze_v1(const CgroupDir& dir) {
  auto deadline = Clock::now() + kTimeout;
  for (int i = 0;; ++i) {
    // A task stuck in the kernel can keep the cgroup FREEZING; thawing and
    // freezing again now and then (as runc does) lets it make progress.
    if (i % 50 == 49) TRY(dir.write("freezer.state", "THAWED"));
    TRY(dir.write("freezer.state", "FROZEN"));
    std::string state = TRY(dir.read("freezer.state"));
    if (state == "FROZEN") return ok();
    if (Clock::now() >= deadline) {
      (void)dir.write("freezer.state", "THAWED");
      return Error(EBUSY, cat("freeze ", dir.path(), ": still ", state, " after 5s"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(i < 10 ? 1 : 10));
  }
}

Status thaw_v1(const CgroupDir& dir) {
  TRY(dir.write("freezer.state", "THAWED"));
  auto deadline = Clock::now() + kTimeout;
  while (true) {
    std::string state = TRY(dir.read("freezer.state"));
    if (state == "THAWED") return ok();
    if (Clock::now() >= deadline) return Error(EBUSY, cat("thaw ", dir.path(), ": still ", state, " after 5s"));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    TRY(dir.write("freezer.state", "THAWED"));
  }
}

Result<bool> frozen_v1(const CgroupDir& dir) {
  std::string state = TRY(dir.read("freezer.state"));
  return state == "FROZEN";
}

Status freeze_v2(const CgroupDir& dir) {
  TRY(dir.write("cgroup.freeze", "1"));
  auto st = wait_v2(dir, true);
  if (!st) (void)dir.write("cgroup.freeze", "0");
  return st;
}

Status thaw_v2(const CgroupDir& dir) {
  TRY(dir.write("cgroup.freeze", "0"));
  return wait_v2(dir, false);
}

Result<bool> frozen_v2(const CgroupDir& dir) {
  std::string want = TRY(dir.read("cgroup.freeze"));
  if (want != "1") return false;
  return events_frozen(dir, true);
}

}  // namespace vessel::cgroups
