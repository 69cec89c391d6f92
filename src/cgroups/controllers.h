// Translation of linux.resources into control-file writes, one .cc per controller.
//
// Each function writes only what is set, into a cgroup directory that has the
// controller. The manager picks the directory (v1 hierarchy or v2 cgroup) and
// reports a controller missing on the host.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cgroups/cgroup_dir.h"
#include "common/error.h"
#include "oci/resources.h"

namespace vessel::cgroups {

class DeviceProgramInstaller;  // device_filter.h

// Whether any field that needs the controller is set.
bool is_set(const oci::LinuxMemory& m);
bool cpu_is_set(const oci::LinuxCpu& c);      // the cpu controller's part of LinuxCpu
bool cpuset_is_set(const oci::LinuxCpu& c);   // cpus / mems
bool is_set(const oci::LinuxBlockIo& b);
bool is_set(const oci::LinuxNetwork& n);

// memory.cc
Status apply_memory_v1(const CgroupDir& dir, const oci::LinuxMemory& m);
Status apply_memory_v2(const CgroupDir& dir, const oci::LinuxMemory& m);
// memory.swap.max for an OCI swap (memory+swap) value: "max", or swap - limit.
Result<std::string> swap_to_v2(int64_t swap, int64_t limit);

// cpu.cc
Status apply_cpu_v1(const CgroupDir& dir, const oci::LinuxCpu& c);
Status apply_cpu_v2(const CgroupDir& dir, const oci::LinuxCpu& c);
// cpu.shares [2, 262144] -> cpu.weight [1, 10000], the formula of runc and crun.
uint64_t shares_to_weight(uint64_t shares);

// cpuset.cc: same files on v1 and v2.
Status apply_cpuset(const CgroupDir& dir, const oci::LinuxCpu& c);
// v1: a cpuset cgroup with empty cpuset.cpus/mems takes its parent's (a process cannot join before).
Status copy_cpuset_from_parent(const CgroupDir& dir, const CgroupDir& parent);

// pids.cc: same file on v1 and v2.
Status apply_pids(const CgroupDir& dir, const oci::LinuxPids& p);

// blkio.cc
Status apply_blkio_v1(const CgroupDir& dir, const oci::LinuxBlockIo& b);
Status apply_io_v2(const CgroupDir& dir, const oci::LinuxBlockIo& b);
// blkio.weight [10, 1000] -> io.weight [1, 10000].
uint64_t blkio_weight_to_io_weight(uint64_t weight);

// hugetlb.cc
Status apply_hugetlb_v1(const CgroupDir& dir, const std::vector<oci::LinuxHugepageLimit>& limits);
Status apply_hugetlb_v2(const CgroupDir& dir, const std::vector<oci::LinuxHugepageLimit>& limits);

// devices.cc
Status apply_devices_v1(const CgroupDir& dir, const std::vector<oci::LinuxDeviceCgroup>& rules);
// v2: builds the eBPF device program of the rules and has `installer` attach it to the
// cgroup in place of the one attached before (none when `rules` is empty).
Status apply_devices_v2(const CgroupDir& dir, const std::vector<oci::LinuxDeviceCgroup>& rules,
                        DeviceProgramInstaller& installer);
// "c 1:3 rwm" for a rule.
std::string device_rule_line(const oci::LinuxDeviceCgroup& rule);
// The devices every container may use (/dev/null, zero, full, random, urandom, tty,
// console, ptmx, pts/*, net/tun, and mknod of any): the container runtime appends these.
std::vector<oci::LinuxDeviceCgroup> default_device_rules();

// network.cc: v1 only (net_cls, net_prio hierarchies).
Status apply_net_cls_v1(const CgroupDir& dir, const oci::LinuxNetwork& n);
Status apply_net_prio_v1(const CgroupDir& dir, const oci::LinuxNetwork& n);

// rdma.cc: rdma.max, same on v1 and v2.
Status apply_rdma(const CgroupDir& dir, const std::map<std::string, oci::LinuxRdma>& rdma);

// unified.cc: v2 key/value pairs written as they are.
Status apply_unified(const CgroupDir& dir, const std::map<std::string, std::string>& unified);

}  // namespace vessel::cgroups
