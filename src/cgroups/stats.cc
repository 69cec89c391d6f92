// Stats: the dispatch over controllers, the OOM counter, shared readers and runc's JSON shape.
#include "cgroups/stats.h"

#include "cgroups/stats_files.h"
#include "common/fs.h"
#include "common/strings.h"

namespace vessel::cgroups {

namespace stats_files {

Result<std::string> read_text(const std::string& dir, std::string_view name, bool optional) {
  std::string path = cat(dir, "/", name);
  auto r = read_file(path);
  if (!r) {
    if (optional && r.error().code() == ENOENT) return std::string();
    return std::move(r).error();
  }
  std::string s = std::move(*r);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

Result<uint64_t> read_u64(const std::string& dir, std::string_view name, bool optional) {
  std::string s = TRY(read_text(dir, name, optional));
  if (s.empty() && optional) return uint64_t{0};
  if (s == "max") return UINT64_MAX;
  auto v = parse_u64(s);
  if (!v) return Error::invalid(cat(dir, "/", name, ": expected an unsigned integer, read \"", s, "\""));
  return *v;
}

std::vector<std::string> fields(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace stats_files

std::map<std::string, uint64_t> parse_flat_keyed(std::string_view text) {
  std::map<std::string, uint64_t> out;
  for (const auto& line : split(text, '\n')) {
    auto f = stats_files::fields(line);
    if (f.size() != 2) continue;
    if (auto v = parse_u64(f[1])) out[f[0]] = *v;
  }
  return out;
}

Result<Stats> read_stats(const StatsSources& src) {
  Stats s;
  if (src.cpuacct.version == 1) {
    TRYC(read_cpu_v1(src.cpuacct.path, src.cpu.version == 1 ? src.cpu.path : "", s), "cpu stats");
  } else if (src.cpu.version == 2) {
    TRYC(read_cpu_v2(src.cpu.path, s), "cpu stats");
  } else if (src.cpu.version == 1) {
    TRYC(read_cpu_v1("", src.cpu.path, s), "cpu stats");
  }
  if (src.memory.version == 1) TRYC(read_memory_v1(src.memory.path, s), "memory stats");
  if (src.memory.version == 2) TRYC(read_memory_v2(src.memory.path, s), "memory stats");
  if (src.pids.version != 0) TRYC(read_pids(src.pids.path, s), "pids stats");
  if (src.blkio.version == 1) TRYC(read_blkio_v1(src.blkio.path, s), "blkio stats");
  if (src.blkio.version == 2) TRYC(read_io_v2(src.blkio.path, s), "io stats");
  if (src.hugetlb.version == 1) TRYC(read_hugetlb_v1(src.hugetlb.path, s), "hugetlb stats");
  if (src.hugetlb.version == 2) TRYC(read_hugetlb_v2(src.hugetlb.path, s), "hugetlb stats");
  return s;
}

Result<uint64_t> read_oom_kill_count(const ControllerDir& memory) {
  if (memory.version == 0) return Error(ENOTSUP, "no memory controller: OOM kills cannot be counted");
  const char* file = memory.version == 1 ? "memory.oom_control" : "memory.events";
  std::string text = TRYC(stats_files::read_text(memory.path, file), "read the OOM kill count");
  auto kv = parse_flat_keyed(text);
  auto it = kv.find("oom_kill");
  if (it == kv.end())
    return Error(ENOTSUP, cat(memory.path, "/", file, " has no oom_kill counter (kernel older than 4.13)"));
  return it->second;
}

namespace {

using Json = nlohmann::ordered_json;

// Go's omitempty: a zero number or an empty list is left out.
void put(Json& j, const char* key, uint64_t v, bool omitempty) {
  if (v != 0 || !omitempty) j[key] = v;
}
void put(Json& j, const char* key, const std::vector<uint64_t>& v) {
  if (!v.empty()) j[key] = v;
}

Json memory_entry(const MemoryEntry& e) {
  Json j = Json::object();
  j["limit"] = e.limit;
  put(j, "usage", e.usage, true);
  put(j, "max", e.max, true);
  j["failcnt"] = e.failcnt;
  return j;
}

Json blkio_table(const std::vector<BlkioEntry>& rows) {
  Json a = Json::array();
  for (const auto& r : rows) {
    Json e = Json::object();
    put(e, "major", r.major, true);
    put(e, "minor", r.minor, true);
    if (!r.op.empty()) e["op"] = r.op;
    put(e, "value", r.value, true);
    a.push_back(std::move(e));
  }
  return a;
}

}  // namespace

nlohmann::ordered_json to_runc_json(const Stats& s) {
  Json cpu_usage = Json::object();
  put(cpu_usage, "total", s.cpu.total, true);
  put(cpu_usage, "percpu", s.cpu.percpu);
  put(cpu_usage, "percpu_kernel", s.cpu.percpu_kernel);
  put(cpu_usage, "percpu_user", s.cpu.percpu_user);
  cpu_usage["kernel"] = s.cpu.kernel;
  cpu_usage["user"] = s.cpu.user;
  Json throttling = Json::object();
  put(throttling, "periods", s.cpu.periods, true);
  put(throttling, "throttledPeriods", s.cpu.throttled_periods, true);
  put(throttling, "throttledTime", s.cpu.throttled_time, true);

  Json memory = Json::object();
  put(memory, "cache", s.memory.cache, true);
  memory["usage"] = memory_entry(s.memory.usage);
  memory["swap"] = memory_entry(s.memory.swap);
  memory["kernel"] = memory_entry(s.memory.kernel);
  memory["kernelTCP"] = memory_entry(s.memory.kernel_tcp);
  if (!s.memory.raw.empty()) {
    Json raw = Json::object();
    for (const auto& [k, v] : s.memory.raw) raw[k] = v;
    memory["raw"] = std::move(raw);
  }

  Json pids = Json::object();
  put(pids, "current", s.pids.current, true);
  put(pids, "limit", s.pids.limit, true);

  Json blkio = Json::object();
  if (!s.blkio.io_service_bytes_recursive.empty())
    blkio["ioServiceBytesRecursive"] = blkio_table(s.blkio.io_service_bytes_recursive);
  if (!s.blkio.io_serviced_recursive.empty())
    blkio["ioServicedRecursive"] = blkio_table(s.blkio.io_serviced_recursive);

  Json hugetlb = Json::object();
  for (const auto& [size, h] : s.hugetlb) {
    Json e = Json::object();
    put(e, "usage", h.usage, true);
    put(e, "max", h.max, true);
    e["failcnt"] = h.failcnt;
    hugetlb[size] = std::move(e);
  }

  Json j = Json::object();
  j["cpu"] = {{"usage", std::move(cpu_usage)}, {"throttling", std::move(throttling)}};
  j["memory"] = std::move(memory);
  j["pids"] = std::move(pids);
  j["blkio"] = std::move(blkio);
  j["hugetlb"] = std::move(hugetlb);
  return j;
}

}  // namespace vessel::cgroups
