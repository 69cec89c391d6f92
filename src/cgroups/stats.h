// Resource usage of a container's cgroups, shaped like runc's `events --stats`
// data (runc types/events.go), read from v1 or v2 control files: each
// controller from wherever the host has it (hybrid hosts mix both).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace vessel::cgroups {

// One of runc's MemoryEntry values (bytes). v2 reports "max" as UINT64_MAX, like runc.
struct MemoryEntry {
  uint64_t limit = 0;
  uint64_t usage = 0;
  uint64_t max = 0;  // peak usage (v1 max_usage_in_bytes, v2 memory.peak)
  uint64_t failcnt = 0;
};

// One row of a blkio table: "8:0 Read 4096" (v1) or "8:0 rbytes=4096" (v2, mapped to v1 names).
struct BlkioEntry {
  uint64_t major = 0;
  uint64_t minor = 0;
  std::string op;  // "Read", "Write", "Sync", "Async", "Discard", "Total"
  uint64_t value = 0;
};

struct HugetlbStats {
  uint64_t usage = 0;
  uint64_t max = 0;  // peak usage (v1 only)
  uint64_t failcnt = 0;
};

struct Stats {
  struct Cpu {
    uint64_t total = 0;   // nanoseconds
    uint64_t kernel = 0;  // nanoseconds
    uint64_t user = 0;    // nanoseconds
    std::vector<uint64_t> percpu, percpu_kernel, percpu_user;  // v1 only
    uint64_t periods = 0;
    uint64_t throttled_periods = 0;
    uint64_t throttled_time = 0;  // nanoseconds
  } cpu;
  struct Memory {
    uint64_t cache = 0;  // v1 memory.stat "cache", v2 "file"
    MemoryEntry usage;
    MemoryEntry swap;    // memory+swap, as v1 reports it (v2: swap.current + current)
    MemoryEntry kernel;  // v1 only
    MemoryEntry kernel_tcp;
    std::map<std::string, uint64_t> raw;  // memory.stat
    // OOM counters: v1 memory.oom_control, v2 memory.events. Not in runc's JSON.
    uint64_t oom = 0;       // v2 "oom": times the limit was hit and reclaim failed
    uint64_t oom_kill = 0;  // processes the OOM killer ended
  } memory;
  struct Pids {
    uint64_t current = 0;
    uint64_t limit = 0;  // 0: no limit (runc's convention)
  } pids;
  struct Blkio {
    std::vector<BlkioEntry> io_service_bytes_recursive;
    std::vector<BlkioEntry> io_serviced_recursive;
  } blkio;
  std::map<std::string, HugetlbStats> hugetlb;  // by page size: "2MB", "1GB"
};

// Where one controller's files are: the directory and the cgroup version (0: the host lacks it).
struct ControllerDir {
  std::string path;
  int version = 0;
};

// The directory of each controller stats reads. On v2 cpu and cpuacct are the same
// cgroup (cpu.stat exists without the cpu controller).
struct StatsSources {
  ControllerDir cpu, cpuacct, memory, pids, blkio, hugetlb;
};

// Reads every controller of `sources`. A controller the host lacks stays zero; a
// control file that some kernels lack (memsw, kmem, memory.peak, io.stat...) reads as zero.
Result<Stats> read_stats(const StatsSources& sources);

// Per-controller readers (stats_v1.cc, stats_v2.cc), for tests and read_stats.
Status read_cpu_v1(const std::string& cpuacct_dir, const std::string& cpu_dir, Stats& s);
Status read_memory_v1(const std::string& dir, Stats& s);
Status read_pids(const std::string& dir, Stats& s);  // same files on v1 and v2
Status read_blkio_v1(const std::string& dir, Stats& s);
Status read_hugetlb_v1(const std::string& dir, Stats& s);
Status read_cpu_v2(const std::string& dir, Stats& s);
Status read_memory_v2(const std::string& dir, Stats& s);
Status read_io_v2(const std::string& dir, Stats& s);
Status read_hugetlb_v2(const std::string& dir, Stats& s);

// The OOM-kill counter of the memory cgroup: v1 memory.oom_control "oom_kill"
// (kernel 4.13+), v2 memory.events "oom_kill". Rises each time the kernel's OOM
// killer ends a process of the cgroup.
Result<uint64_t> read_oom_kill_count(const ControllerDir& memory);

// runc's types.Stats as JSON (the "data" of a stats event), with Go's omitempty rules.
nlohmann::ordered_json to_runc_json(const Stats& s);

// Parses "key value" lines (memory.stat, cpu.stat, memory.events); junk lines are skipped.
std::map<std::string, uint64_t> parse_flat_keyed(std::string_view text);

}  // namespace vessel::cgroups
