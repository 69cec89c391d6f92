// memory controller: v1 memory.*_in_bytes, v2 memory.max/low/swap.max.
#include "cgroups/controllers.h"
#include "common/log.h"
#include "common/strings.h"

namespace vessel::cgroups {
namespace {

std::string v2_value(int64_t v) { return v < 0 ? std::string("max") : std::to_string(v); }

// checkBeforeUpdate: refuse a limit below the current usage.
Status check_usage(const CgroupDir& dir, const char* usage_file, int64_t limit) {
  if (limit < 0) return ok();
  int64_t usage = TRY(dir.read_int(usage_file));
  if (usage > limit)
    return Error(EBUSY, cat("linux.resources.memory.limit: ", limit, " is below the current usage of ", usage,
                            " bytes (checkBeforeUpdate)"));
  return ok();
}

// What v1 reports for "no limit": PAGE_COUNTER_MAX pages, about 2^63 bytes.
constexpr int64_t kUnlimitedV1 = int64_t{1} << 62;

// memory.limit_in_bytes; a refusal (the kernel could not reclaim enough) says how
// much the container uses, as runc does.
Status set_limit_v1(const CgroupDir& dir, int64_t limit) {
  auto st = dir.write("memory.limit_in_bytes", std::to_string(limit));
  if (!st && st.error().code() == EBUSY) {
    auto usage = dir.read_int("memory.usage_in_bytes");
    auto peak = dir.read_int("memory.max_usage_in_bytes");
    return std::move(st).error().context(cat("unable to set memory limit to ", limit, " (current usage: ",
                                             usage ? std::to_string(*usage) : "?", ", peak usage: ",
                                             peak ? std::to_string(*peak) : "?", ")"));
  }
  return st;
}

}  // namespace

bool is_set(const oci::LinuxMemory& m) {
  return m.limit || m.reservation || m.swap || m.kernel || m.kernel_tcp || m.swappiness || m.disable_oom_killer ||
         m.use_hierarchy;
}

Status apply_memory_v1(const CgroupDir& dir, const oci::LinuxMemory& m) {
  if (m.check_before_update.value_or(false) && m.limit) TRY(check_usage(dir, "memory.usage_in_bytes", *m.limit));

  std::optional<int64_t> swap = m.swap;
  // An unlimited memory limit without a swap value means unlimited swap too (runc).
  if (m.limit && *m.limit == -1 && !swap) swap = -1;
  constexpr const char* kMemsw = "memory.memsw.limit_in_bytes";
  if (swap && !dir.has(kMemsw)) {
    if (*swap != -1 && !(m.limit && *swap == *m.limit))
      return Error(ENOTSUP, "linux.resources.memory.swap: the kernel has no swap accounting "
                            "(memory.memsw.limit_in_bytes is missing)");
    swap.reset();  // nothing to limit
  }
  // The kernel keeps memory.limit <= memsw.limit at every step (unlimited is the largest).
  auto fits = [](int64_t limit, int64_t memsw) { return memsw < 0 || (limit >= 0 && limit <= memsw); };
  if (m.limit && swap && !fits(*m.limit, *swap))
    return Error::invalid(cat("linux.resources.memory.swap: ", *swap, " is below memory.limit ", *m.limit,
                              " (swap is the limit of memory plus swap)"));
  // A value given alone must fit the other's current value (an unreadable one is left to the kernel).
  auto current_value = [&](const char* file) -> std::optional<int64_t> {
    auto v = dir.read_int(file);
    if (!v) return std::nullopt;
    return *v >= kUnlimitedV1 ? -1 : *v;
  };
  if (m.limit && !swap && dir.has(kMemsw)) {
    if (auto memsw = current_value(kMemsw); memsw && !fits(*m.limit, *memsw))
      return Error::invalid(cat("linux.resources.memory.limit: ", *m.limit,
                                " is above the current memory+swap limit ", *memsw, "; set memory.swap as well"));
  }
  if (swap && !m.limit) {
    if (auto limit = current_value("memory.limit_in_bytes"); limit && !fits(*limit, *swap))
      return Error::invalid(cat("linux.resources.memory.swap: ", *swap, " is below the current memory limit ",
                                *limit < 0 ? std::string("(unlimited)") : std::to_string(*limit)));
  }

  if (m.limit && swap) {
    // Raise memsw first when the memory limit grows, lower the memory limit first when it shrinks.
    auto current = dir.read_int("memory.limit_in_bytes");
    bool growing = *m.limit == -1 || !current || *current == -1 || *m.limit > *current;
    if (growing) {
      TRY(dir.write(kMemsw, std::to_string(*swap)));
      TRY(set_limit_v1(dir, *m.limit));
    } else {
      TRY(set_limit_v1(dir, *m.limit));
      TRY(dir.write(kMemsw, std::to_string(*swap)));
    }
  } else if (m.limit) {
    TRY(set_limit_v1(dir, *m.limit));
  } else if (swap) {
    TRY(dir.write(kMemsw, std::to_string(*swap)));
  }

  if (m.reservation) TRY(dir.write("memory.soft_limit_in_bytes", std::to_string(*m.reservation)));
  if (m.kernel) {
    // Removed from recent kernels, deprecated by the spec: best effort.
    if (dir.has("memory.kmem.limit_in_bytes")) {
      auto st = dir.write("memory.kmem.limit_in_bytes", std::to_string(*m.kernel));
      if (!st) log::warn("cgroups", cat("ignoring linux.resources.memory.kernel: ", st.error().message()));
    } else {
      log::warn("cgroups", "ignoring linux.resources.memory.kernel: not supported by this kernel");
    }
  }
  if (m.kernel_tcp) TRY(dir.write("memory.kmem.tcp.limit_in_bytes", std::to_string(*m.kernel_tcp)));
  if (m.swappiness) TRY(dir.write("memory.swappiness", std::to_string(*m.swappiness)));
  // Only true asks for something (runc): Docker sends false in every config.
  if (m.disable_oom_killer.value_or(false)) TRY(dir.write("memory.oom_control", "1"));
  if (m.use_hierarchy) TRY(dir.write("memory.use_hierarchy", *m.use_hierarchy ? "1" : "0"));
  return ok();
}

Result<std::string> swap_to_v2(int64_t swap, int64_t limit) {
  if (swap == -1) return std::string("max");
  if (swap < 0) return Error::invalid(cat("linux.resources.memory.swap: invalid value ", swap));
  if (limit == -1)
    return Error::invalid("linux.resources.memory.swap: a swap limit needs a memory limit (memory.limit is -1)");
  if (swap < limit)
    return Error::invalid(cat("linux.resources.memory.swap: ", swap, " is below memory.limit ", limit,
                              " (swap is the limit of memory plus swap)"));
  return std::to_string(swap - limit);
}

Status apply_memory_v2(const CgroupDir& dir, const oci::LinuxMemory& m) {
  if (m.check_before_update.value_or(false) && m.limit) TRY(check_usage(dir, "memory.current", *m.limit));

  if (m.swap) {
    std::optional<int64_t> limit = m.limit;
    if (!limit) {
      auto current = dir.read_int("memory.max");  // update of swap alone
      if (!current) return std::move(current).error().context("linux.resources.memory.swap");
      limit = *current;
    }
    std::string value = TRY(swap_to_v2(*m.swap, *limit));
    if (dir.has("memory.swap.max")) {
      TRY(dir.write("memory.swap.max", value));
    } else if (value != "max" && value != "0") {
      return Error(ENOTSUP, "linux.resources.memory.swap: the kernel has no swap accounting (memory.swap.max is missing)");
    }
  } else if (m.limit && *m.limit == -1 && dir.has("memory.swap.max")) {
    TRY(dir.write("memory.swap.max", "max"));
  }
  if (m.limit) TRY(dir.write("memory.max", v2_value(*m.limit)));
  if (m.reservation) TRY(dir.write("memory.low", v2_value(*m.reservation)));

  if (m.kernel) log::warn("cgroups", "ignoring linux.resources.memory.kernel: not supported on cgroup v2");
  if (m.kernel_tcp) log::warn("cgroups", "ignoring linux.resources.memory.kernelTCP: not supported on cgroup v2");
  if (m.swappiness)
    return Error(ENOTSUP, "linux.resources.memory.swappiness: not supported on cgroup v2");
  if (m.disable_oom_killer.value_or(false))
    return Error(ENOTSUP, "linux.resources.memory.disableOOMKiller: not supported on cgroup v2");
  // useHierarchy: v2 is always hierarchical.
  return ok();
}

}  // namespace vessel::cgroups
