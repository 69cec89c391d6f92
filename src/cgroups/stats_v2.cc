// Stats from cgroup v2 control files (cpu.stat, memory.*, io.stat), mapped to runc's v1-shaped fields.
#include "cgroups/stats.h"
#include "cgroups/stats_files.h"
#include "common/strings.h"

namespace vessel::cgroups {

using stats_files::fields;
using stats_files::read_text;
using stats_files::read_u64;

Status read_cpu_v2(const std::string& dir, Stats& s) {
  auto kv = parse_flat_keyed(TRY(read_text(dir, "cpu.stat")));
  s.cpu.total = kv["usage_usec"] * 1000;
  s.cpu.user = kv["user_usec"] * 1000;
  s.cpu.kernel = kv["system_usec"] * 1000;
  s.cpu.periods = kv["nr_periods"];
  s.cpu.throttled_periods = kv["nr_throttled"];
  s.cpu.throttled_time = kv["throttled_usec"] * 1000;
  return ok();
}

Status read_memory_v2(const std::string& dir, Stats& s) {
  s.memory.raw = parse_flat_keyed(TRY(read_text(dir, "memory.stat")));
  s.memory.cache = s.memory.raw.count("file") ? s.memory.raw["file"] : 0;

  MemoryEntry& usage = s.memory.usage;
  usage.usage = TRY(read_u64(dir, "memory.current"));
  usage.limit = TRY(read_u64(dir, "memory.max"));
  usage.max = TRY(read_u64(dir, "memory.peak", true));  // 5.19+

  // v1 reports memory+swap; v2's swap files count swap alone (and are missing
  // without swap accounting). Report the v1 sum, as runc does.
  MemoryEntry& swap = s.memory.swap;
  std::string swap_current = TRY(read_text(dir, "memory.swap.current", true));
  if (!swap_current.empty()) {
    swap.usage = TRY(read_u64(dir, "memory.swap.current"));
    swap.limit = TRY(read_u64(dir, "memory.swap.max", true));
  }
  swap.usage += usage.usage;
  if (swap.limit != UINT64_MAX) swap.limit += usage.limit;
  if (swap.limit < usage.limit) swap.limit = UINT64_MAX;  // overflow: unlimited

  // memory.events: oom (allocation failed after reclaim), oom_kill (processes killed).
  auto events = parse_flat_keyed(TRY(read_text(dir, "memory.events", true)));
  s.memory.oom = events["oom"];
  s.memory.oom_kill = events["oom_kill"];
  usage.failcnt = events["max"];  // times usage hit memory.max: the nearest to v1's failcnt
  return ok();
}

Status read_io_v2(const std::string& dir, Stats& s) {
  // "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" per device.
  std::string text = TRY(read_text(dir, "io.stat", true));
  for (const auto& line : split(text, '\n')) {
    auto f = fields(line);
    if (f.empty()) continue;
    auto colon = f[0].find(':');
    if (colon == std::string::npos) continue;
    auto major = parse_u64(std::string_view(f[0]).substr(0, colon));
    auto minor = parse_u64(std::string_view(f[0]).substr(colon + 1));
    if (!major || !minor) return Error::invalid(cat(dir, "/io.stat: malformed line \"", line, "\""));
    for (size_t i = 1; i < f.size(); ++i) {
      auto eq = f[i].find('=');
      if (eq == std::string::npos) continue;
      std::string key = f[i].substr(0, eq);
      auto value = parse_u64(std::string_view(f[i]).substr(eq + 1));
      if (!value) return Error::invalid(cat(dir, "/io.stat: malformed field \"", f[i], "\""));
      BlkioEntry e{*major, *minor, "", *value};
      if (key == "rbytes" || key == "wbytes") {
        e.op = key[0] == 'r' ? "Read" : "Write";
        s.blkio.io_service_bytes_recursive.push_back(e);
      } else if (key == "rios" || key == "wios") {
        e.op = key[0] == 'r' ? "Read" : "Write";
        s.blkio.io_serviced_recursive.push_back(e);
      }
    }
  }
  return ok();
}

}  // namespace vessel::cgroups
