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

}  // namespace

bool is_set(const oci::LinuxMemory& m) {
  return m.limit || m.reservation || m.swap || m.kernel || m.kernel_tcp || m.swappiness || m.disable_oom_killer ||
         m.use_hierarchy;
}

Status apply_memory_v1(const CgroupDir& dir, const oci::LinuxMemory& m) {
  if (m.check_before_update.value_or(false) && m.limit) TRY(check_usage(dir, "memory.usage_in_bytes", *m.limit));

  std::optional<int64_t> swap = m.swap;
  // An unlimited memory limit with swap 0 means unlimited swap too (runc).
  if (m.limit && *m.limit == -1 && swap && *swap == 0) swap = -1;
  constexpr const char* kMemsw = "memory.memsw.limit_in_bytes";
  if (swap && !dir.has(kMemsw)) {
    if (*swap != -1 && !(m.limit && *swap == *m.limit))
      return Error(ENOTSUP, "linux.resources.memory.swap: the kernel has no swap accounting "
                            "(memory.memsw.limit_in_bytes is missing)");
    swap.reset();  // nothing to limit
  }

  if (m.limit && swap) {
    // The kernel keeps memory.limit <= memsw.limit at every step: raise memsw first
    // when the memory limit grows, lower the memory limit first when it shrinks.
    auto current = dir.read_int("memory.limit_in_bytes");
    bool growing = *m.limit == -1 || !current || *current == -1 || *m.limit > *current;
    if (growing) {
      TRY(dir.write(kMemsw, std::to_string(*swap)));
      TRY(dir.write("memory.limit_in_bytes", std::to_string(*m.limit)));
    } else {
      TRY(dir.write("memory.limit_in_bytes", std::to_string(*m.limit)));
      TRY(dir.write(kMemsw, std::to_string(*swap)));
    }
  } else if (m.limit) {
    TRY(dir.write("memory.limit_in_bytes", std::to_string(*m.limit)));
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
  if (m.disable_oom_killer) TRY(dir.write("memory.oom_control", *m.disable_oom_killer ? "1" : "0"));
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
