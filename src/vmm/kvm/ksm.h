// KSM (kernel samepage merging) counters: what the host's ksmd shares between
// guests whose RAM is mergeable (`--memory ...,mergeable=on`). vessel only reads
// them; whether ksmd runs is the administrator's setting
// (/sys/kernel/mm/ksm/run), which vessel never changes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "common/error.h"

namespace vessel::vmm {

// /sys/kernel/mm/ksm (Documentation/admin-guide/mm/ksm.rst).
struct KsmStats {
  uint64_t run = 0;             // 0 stopped, 1 running, 2 unmerging
  uint64_t pages_shared = 0;    // shared pages in use
  uint64_t pages_sharing = 0;   // further sites sharing them: the pages saved
  uint64_t pages_unshared = 0;  // unique pages checked repeatedly
  uint64_t full_scans = 0;
};

// Reads the counters under `dir`; an error (naming the path) on a kernel without KSM.
Result<KsmStats> read_ksm_stats(const std::string& dir = "/sys/kernel/mm/ksm");

// Pages of process `pid` merged by KSM (/proc/PID/ksm_merging_pages, Linux
// 5.19 and later); nullopt where the kernel does not say.
std::optional<uint64_t> ksm_merging_pages(pid_t pid);

}  // namespace vessel::vmm
