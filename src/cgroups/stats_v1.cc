// Stats from cgroup v1 control files (cpuacct, cpu, memory, pids, blkio, hugetlb).
#include <dirent.h>
#include <unistd.h>

#include "cgroups/stats.h"
#include "cgroups/stats_files.h"
#include "common/strings.h"

namespace vessel::cgroups {

using stats_files::fields;
using stats_files::read_text;
using stats_files::read_u64;

namespace {

Result<std::vector<uint64_t>> read_list(const std::string& dir, std::string_view name) {
  std::vector<uint64_t> out;
  for (const auto& f : fields(TRY(read_text(dir, name, true)))) {
    auto v = parse_u64(f);
    if (!v) return Error::invalid(cat(dir, "/", name, ": expected numbers, read \"", f, "\""));
    out.push_back(*v);
  }
  return out;
}

// memory.<prefix>usage_in_bytes and friends. Absent when the kernel lacks the
// group (memsw without swap accounting, kmem on new kernels) and `optional`.
Result<MemoryEntry> read_memory_entry(const std::string& dir, const std::string& prefix, bool optional) {
  MemoryEntry e;
  std::string usage = TRY(read_text(dir, prefix + "usage_in_bytes", optional));
  if (usage.empty()) return e;
  e.usage = TRY(read_u64(dir, prefix + "usage_in_bytes"));
  e.max = TRY(read_u64(dir, prefix + "max_usage_in_bytes", true));
  e.failcnt = TRY(read_u64(dir, prefix + "failcnt", true));
  e.limit = TRY(read_u64(dir, prefix + "limit_in_bytes", true));  // kmem.limit_in_bytes left in 5.16+
  return e;
}

// "8:0 Read 4096" lines; "Total N" lines are left out.
Result<std::vector<BlkioEntry>> read_blkio_table(const std::string& dir, const std::string& name) {
  std::vector<BlkioEntry> out;
  std::string text = TRY(read_text(dir, name, true));
  for (const auto& line : split(text, '\n')) {
    auto f = fields(line);
    if (f.size() != 3) continue;
    auto colon = f[0].find(':');
    if (colon == std::string::npos) continue;
    auto major = parse_u64(std::string_view(f[0]).substr(0, colon));
    auto minor = parse_u64(std::string_view(f[0]).substr(colon + 1));
    auto value = parse_u64(f[2]);
    if (!major || !minor || !value) return Error::invalid(cat(dir, "/", name, ": malformed line \"", line, "\""));
    out.push_back({*major, *minor, f[1], *value});
  }
  return out;
}

// Page sizes with a hugetlb.<size>.<suffix> file in dir: "2MB", "1GB".
std::vector<std::string> hugetlb_sizes(const std::string& dir, std::string_view suffix) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (!starts_with(n, "hugetlb.") || n.size() <= 8 + suffix.size() || n.substr(n.size() - suffix.size()) != suffix)
      continue;
    std::string_view size = n.substr(8, n.size() - 8 - suffix.size());
    if (size.find('.') == std::string_view::npos) out.emplace_back(size);
  }
  ::closedir(d);
  return out;
}

}  // namespace

Status read_cpu_v1(const std::string& cpuacct, const std::string& cpu, Stats& s) {
  if (!cpuacct.empty()) {
    s.cpu.total = TRY(read_u64(cpuacct, "cpuacct.usage"));
    s.cpu.percpu = TRY(read_list(cpuacct, "cpuacct.usage_percpu"));
    // user/system in clock ticks.
    auto kv = parse_flat_keyed(TRY(read_text(cpuacct, "cpuacct.stat", true)));
    const uint64_t hz = static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    if (hz > 0) {
      s.cpu.user = kv["user"] * (1000000000 / hz);
      s.cpu.kernel = kv["system"] * (1000000000 / hz);
    }
    // "cpu user system" header, then one line per CPU, in nanoseconds.
    auto all = split(TRY(read_text(cpuacct, "cpuacct.usage_all", true)), '\n');
    for (size_t i = 1; i < all.size(); ++i) {
      auto f = fields(all[i]);
      if (f.size() < 3) continue;
      auto user = parse_u64(f[1]), sys = parse_u64(f[2]);
      if (!user || !sys) return Error::invalid(cat(cpuacct, "/cpuacct.usage_all: malformed line \"", all[i], "\""));
      s.cpu.percpu_user.push_back(*user);
      s.cpu.percpu_kernel.push_back(*sys);
    }
  }
  if (!cpu.empty()) {
    auto kv = parse_flat_keyed(TRY(read_text(cpu, "cpu.stat", true)));
    s.cpu.periods = kv["nr_periods"];
    s.cpu.throttled_periods = kv["nr_throttled"];
    s.cpu.throttled_time = kv["throttled_time"];  // already nanoseconds on v1
  }
  return ok();
}

Status read_memory_v1(const std::string& dir, Stats& s) {
  s.memory.raw = parse_flat_keyed(TRY(read_text(dir, "memory.stat")));
  s.memory.cache = s.memory.raw.count("cache") ? s.memory.raw["cache"] : 0;
  s.memory.usage = TRY(read_memory_entry(dir, "memory.", false));
  s.memory.swap = TRY(read_memory_entry(dir, "memory.memsw.", true));
  s.memory.kernel = TRY(read_memory_entry(dir, "memory.kmem.", true));
  s.memory.kernel_tcp = TRY(read_memory_entry(dir, "memory.kmem.tcp.", true));
  auto oom = parse_flat_keyed(TRY(read_text(dir, "memory.oom_control", true)));
  s.memory.oom_kill = oom["oom_kill"];  // v1 has no counter of failed reclaims (v2's "oom")
  return ok();
}

Status read_pids(const std::string& dir, Stats& s) {
  std::string current = TRY(read_text(dir, "pids.current", true));
  if (current.empty()) {
    // v2 without the pids controller enabled: count the processes.
    std::string procs = TRY(read_text(dir, "cgroup.procs"));
    s.pids.current = procs.empty() ? 0 : split(procs, '\n').size();
    s.pids.limit = 0;
    return ok();
  }
  s.pids.current = TRY(read_u64(dir, "pids.current"));
  uint64_t limit = TRY(read_u64(dir, "pids.max", true));
  s.pids.limit = limit == UINT64_MAX ? 0 : limit;
  return ok();
}

Status read_blkio_v1(const std::string& dir, Stats& s) {
  // As runc: the CFQ files, else BFQ's, else the throttle layer's (which counts
  // every bio whatever the scheduler).
  for (const char* prefix : {"blkio.", "blkio.bfq.", "blkio.throttle."}) {
    auto bytes = TRY(read_blkio_table(dir, cat(prefix, "io_service_bytes_recursive")));
    auto ios = TRY(read_blkio_table(dir, cat(prefix, "io_serviced_recursive")));
    if (bytes.empty() && ios.empty()) continue;
    s.blkio.io_service_bytes_recursive = std::move(bytes);
    s.blkio.io_serviced_recursive = std::move(ios);
    break;
  }
  return ok();
}

Status read_hugetlb_v1(const std::string& dir, Stats& s) {
  for (const auto& size : hugetlb_sizes(dir, ".usage_in_bytes")) {
    HugetlbStats h;
    h.usage = TRY(read_u64(dir, cat("hugetlb.", size, ".usage_in_bytes")));
    h.max = TRY(read_u64(dir, cat("hugetlb.", size, ".max_usage_in_bytes"), true));
    h.failcnt = TRY(read_u64(dir, cat("hugetlb.", size, ".failcnt"), true));
    s.hugetlb[size] = h;
  }
  return ok();
}

// v2 hugetlb lives here too: it shares the directory scan.
Status read_hugetlb_v2(const std::string& dir, Stats& s) {
  for (const auto& size : hugetlb_sizes(dir, ".current")) {
    HugetlbStats h;
    h.usage = TRY(read_u64(dir, cat("hugetlb.", size, ".current")));
    // hugetlb.<size>.events: "max N", allocations refused by the limit.
    auto events = parse_flat_keyed(TRY(read_text(dir, cat("hugetlb.", size, ".events"), true)));
    h.failcnt = events["max"];
    s.hugetlb[size] = h;
  }
  return ok();
}

}  // namespace vessel::cgroups
