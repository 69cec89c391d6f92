// Crash injection for tests: makes vessel SIGKILL itself at a named point, so a
// test can check that whatever a killed command leaves behind is visible and
// removable (`delete --force`, `image prune`).
//
// Off unless the environment says otherwise; the environment is read once.
//   VESSEL_CRASH_AT=name     die at the first crash_point("name")
//   VESSEL_CRASH_AT=name#K   die at the K-th crash_point("name") (1-based)
//   VESSEL_CRASH_AT=N        die at the N-th crash point reached, whatever its name
//   VESSEL_CRASH_TRACE=FILE  append each point's name, one a line, before
//                            deciding (a test runs once with it to learn the points)
#pragma once

#include <string_view>

namespace vessel {

// Kills the calling process with SIGKILL when VESSEL_CRASH_AT selects this
// point; otherwise returns at once (one branch when crash injection is off).
void crash_point(std::string_view name);

}  // namespace vessel
