// FsManager::apply: each resource goes to the hierarchy that has its controller,
// all of it or none of it.
#include "cgroups/controllers.h"
#include "cgroups/device_filter.h"
#include "cgroups/fs_manager.h"
#include "common/strings.h"

namespace vessel::cgroups {

Status FsManager::apply(const oci::LinuxResources& r) {
  // The check pass runs every controller's code with writes that only check their
  // file: a missing controller or file, a value out of range or a limit that does
  // not fit the current ones fails here, before anything changed.
  {
    WriteJournal check(/*check_only=*/true);
    journal_ = &check;
    auto st = apply_pass(r);
    journal_ = nullptr;
    TRY(std::move(st));
  }
  // What only the kernel can refuse (a memory limit below what it can reclaim...)
  // undoes the writes made before it.
  WriteJournal journal(/*check_only=*/false);
  journal_ = &journal;
  auto st = apply_pass(r);
  journal_ = nullptr;
  if (!st) (void)journal.rollback();
  return st;
}

Status FsManager::apply_pass(const oci::LinuxResources& r) {
  // Runs f(dir, version) in the v1 hierarchy holding `v1_name`, else in the v2 cgroup
  // when it has `v2_name`, else reports the controller missing for `field`.
  auto use = [&](const char* v1_name, const char* v2_name, const char* field, auto f) -> Status {
    if (const auto* h = v1_for(v1_name)) return f(dir(*h), 1);
    if (v2_name && v2_has(v2_name)) return f(dir(*v2_), 2);
    return Error(ENOTSUP, cat(field, ": the ", v2_name && layout_ == Layout::kV2 ? v2_name : v1_name,
                              " controller is not available on this host"));
  };

  // As runc: unified keys are cgroup v2 files of a pure v2 host. On a hybrid host the
  // v2 tree has none of the v1 controllers (here: hugetlb only), so they are refused
  // before anything is written.
  if (!r.unified.empty() && layout_ != Layout::kV2)
    return Error::invalid(cat("invalid configuration: linux.resources.unified: cannot use unified on cgroup v1 (this host is ",
                              layout_ == Layout::kHybrid ? "hybrid" : "v1", ")"));
  if (!r.devices.empty()) {
    if (const auto* h = v1_for("devices")) {
      TRYC(apply_devices_v1(dir(*h), r.devices), "set device rules");
    } else if (v2_) {
      // Hybrid hosts without a v1 devices hierarchy land here too: a device program
      // works on any cgroup2 cgroup.
      auto& installer = device_installer_ ? *device_installer_ : kernel_device_installer();
      TRYC(apply_devices_v2(dir(*v2_), r.devices, installer), "linux.resources.devices");
    } else {
      return Error(ENOTSUP, "linux.resources.devices: the devices controller is not available on this host");
    }
  }
  if (r.memory && is_set(*r.memory)) {
    TRYC(use("memory", "memory", "linux.resources.memory",
             [&](const CgroupDir& d, int v) { return v == 1 ? apply_memory_v1(d, *r.memory) : apply_memory_v2(d, *r.memory); }),
         "set memory limits");
  }
  if (r.cpu && cpuset_is_set(*r.cpu)) {
    TRYC(use("cpuset", "cpuset", "linux.resources.cpu.cpus/mems",
             [&](const CgroupDir& d, int) { return apply_cpuset(d, *r.cpu); }),
         "set cpuset");
  }
  if (r.cpu && cpu_is_set(*r.cpu)) {
    TRYC(use("cpu", "cpu", "linux.resources.cpu",
             [&](const CgroupDir& d, int v) { return v == 1 ? apply_cpu_v1(d, *r.cpu) : apply_cpu_v2(d, *r.cpu); }),
         "set cpu limits");
  }
  if (r.pids && r.pids->limit) {
    TRYC(use("pids", "pids", "linux.resources.pids.limit", [&](const CgroupDir& d, int) { return apply_pids(d, *r.pids); }),
         "set pids limit");
  }
  if (r.block_io && is_set(*r.block_io)) {
    TRYC(use("blkio", "io", "linux.resources.blockIO",
             [&](const CgroupDir& d, int v) { return v == 1 ? apply_blkio_v1(d, *r.block_io) : apply_io_v2(d, *r.block_io); }),
         "set block I/O limits");
  }
  if (!r.hugepage_limits.empty()) {
    TRYC(use("hugetlb", "hugetlb", "linux.resources.hugepageLimits",
             [&](const CgroupDir& d, int v) {
               return v == 1 ? apply_hugetlb_v1(d, r.hugepage_limits) : apply_hugetlb_v2(d, r.hugepage_limits);
             }),
         "set hugepage limits");
  }
  if (r.network && r.network->class_id) {
    TRYC(use("net_cls", nullptr, "linux.resources.network.classID",
             [&](const CgroupDir& d, int) { return apply_net_cls_v1(d, *r.network); }),
         "set network class");
  }
  if (r.network && !r.network->priorities.empty()) {
    TRYC(use("net_prio", nullptr, "linux.resources.network.priorities",
             [&](const CgroupDir& d, int) { return apply_net_prio_v1(d, *r.network); }),
         "set network priorities");
  }
  if (!r.rdma.empty()) {
    TRYC(use("rdma", "rdma", "linux.resources.rdma", [&](const CgroupDir& d, int) { return apply_rdma(d, r.rdma); }),
         "set rdma limits");
  }
  if (!r.unified.empty()) {
    TRYC(apply_unified(dir(*v2_), r.unified), "set unified values");
  }
  return ok();
}

}  // namespace vessel::cgroups
