// cpu controller: v1 cpu.shares/cfs_*/rt_*, v2 cpu.weight/cpu.max.
#include "cgroups/controllers.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

constexpr uint64_t kMinShares = 2, kMaxShares = 262144;  // kernel/sched: MIN_SHARES, MAX_SHARES

}  // namespace

bool cpu_is_set(const oci::LinuxCpu& c) {
  return c.shares || c.quota || c.burst || c.period || c.realtime_runtime || c.realtime_period || c.idle;
}

uint64_t shares_to_weight(uint64_t shares) {
  if (shares == 0) return 0;
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

Status apply_cpu_v1(const CgroupDir& dir, const oci::LinuxCpu& c) {
  if (c.shares) {
    // The kernel clamps silently; runc reports a clamped value as an error.
    if (*c.shares < kMinShares || *c.shares > kMaxShares)
      return Error::invalid(cat("linux.resources.cpu.shares: ", *c.shares, " is outside the kernel's range [",
                                kMinShares, ", ", kMaxShares, "]"));
    TRY(dir.write("cpu.shares", std::to_string(*c.shares)));
  }
  if (c.period) {
    auto st = dir.write("cpu.cfs_period_us", std::to_string(*c.period));
    if (!st) {
      // The new period may conflict with the old quota: set the quota first, then retry.
      if (st.error().code() != EINVAL || !c.quota) return st;
      TRY(dir.write("cpu.cfs_quota_us", std::to_string(*c.quota)));
      TRY(dir.write("cpu.cfs_period_us", std::to_string(*c.period)));
    } else if (c.quota) {
      TRY(dir.write("cpu.cfs_quota_us", std::to_string(*c.quota)));
    }
  } else if (c.quota) {
    TRY(dir.write("cpu.cfs_quota_us", std::to_string(*c.quota)));
  }
  if (c.burst) TRY(dir.write("cpu.cfs_burst_us", std::to_string(*c.burst)));
  if (c.realtime_period) TRY(dir.write("cpu.rt_period_us", std::to_string(*c.realtime_period)));
  if (c.realtime_runtime) TRY(dir.write("cpu.rt_runtime_us", std::to_string(*c.realtime_runtime)));
  if (c.idle) TRY(dir.write("cpu.idle", std::to_string(*c.idle)));
  return ok();
}

Status apply_cpu_v2(const CgroupDir& dir, const oci::LinuxCpu& c) {
  if ((c.realtime_runtime && *c.realtime_runtime != 0) || (c.realtime_period && *c.realtime_period != 0))
    return Error(ENOTSUP, "linux.resources.cpu.realtimeRuntime/realtimePeriod: not supported on cgroup v2");
  if (c.shares && *c.shares != 0) TRY(dir.write("cpu.weight", std::to_string(shares_to_weight(*c.shares))));
  if (c.quota || c.period) {
    // cpu.max holds both: keep the current value of the one not given.
    std::string quota = "max";
    uint64_t period = 100000;
    if (auto cur = dir.read("cpu.max")) {
      auto parts = split(*cur, ' ');
      if (parts.size() == 2) {
        quota = parts[0];
        if (auto p = parse_u64(parts[1])) period = *p;
      }
    }
    if (c.quota) quota = *c.quota > 0 ? std::to_string(*c.quota) : std::string("max");
    if (c.period && *c.period != 0) period = *c.period;
    TRY(dir.write("cpu.max", cat(quota, " ", period)));
  }
  if (c.burst) TRY(dir.write("cpu.max.burst", std::to_string(*c.burst)));
  if (c.idle) TRY(dir.write("cpu.idle", std::to_string(*c.idle)));
  return ok();
}

}  // namespace vessel::cgroups
