// Identifying a process across pid reuse: its pid plus its start time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace vessel {

// /proc/<pid>/stat field 22 (clock ticks after boot); 0 when the process is gone or a zombie.
uint64_t pid_start_time(pid_t pid);

// "<pid>.<start time>" of the calling process: names temporaries so that a later
// command can tell whether their owner is still running (see owner_alive).
std::string self_owner_tag();

// Whether the owner tag "<pid>.<start>" names a live process (false for a malformed tag).
bool owner_alive(std::string_view tag);

}  // namespace vessel
