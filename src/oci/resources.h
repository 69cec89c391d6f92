// linux.resources of the OCI runtime-spec 1.2: the cgroup limits of a container.
//
// Every optional field is a std::optional so "unset" (leave the kernel's value
// alone) differs from 0. The same type carries the body of `vessel update`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace vessel::oci {

// One device cgroup rule (linux.resources.devices[]).
struct LinuxDeviceCgroup {
  bool allow = false;
  std::optional<std::string> type;    // "a", "c" or "b"; unset means "a"
  std::optional<int64_t> major;       // unset or -1: any
  std::optional<int64_t> minor;
  std::optional<std::string> access;  // subset of "rwm"; unset means "rwm"
};

struct LinuxMemory {
  std::optional<int64_t> limit;        // bytes, -1 unlimited
  std::optional<int64_t> reservation;  // soft limit
  std::optional<int64_t> swap;         // memory + swap limit (v1 semantics), -1 unlimited
  std::optional<int64_t> kernel;       // deprecated in the spec
  std::optional<int64_t> kernel_tcp;
  std::optional<uint64_t> swappiness;
  std::optional<bool> disable_oom_killer;
  std::optional<bool> use_hierarchy;
  std::optional<bool> check_before_update;
};

struct LinuxCpu {
  std::optional<uint64_t> shares;
  std::optional<int64_t> quota;   // microseconds per period, -1 unlimited
  std::optional<uint64_t> burst;
  std::optional<uint64_t> period;
  std::optional<int64_t> realtime_runtime;
  std::optional<uint64_t> realtime_period;
  std::optional<std::string> cpus;
  std::optional<std::string> mems;
  std::optional<int64_t> idle;
};

struct LinuxPids {
  std::optional<int64_t> limit;  // < 0: unlimited (0 is "not set", see clear_unset_zeros)
};

struct LinuxWeightDevice {
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
};

struct LinuxThrottleDevice {
  int64_t major = 0;
  int64_t minor = 0;
  uint64_t rate = 0;
};

struct LinuxBlockIo {
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
  std::vector<LinuxWeightDevice> weight_device;
  std::vector<LinuxThrottleDevice> throttle_read_bps_device;
  std::vector<LinuxThrottleDevice> throttle_write_bps_device;
  std::vector<LinuxThrottleDevice> throttle_read_iops_device;
  std::vector<LinuxThrottleDevice> throttle_write_iops_device;
};

struct LinuxHugepageLimit {
  std::string page_size;  // "2MB", "1GB", "64KB"
  uint64_t limit = 0;     // bytes
};

struct LinuxInterfacePriority {
  std::string name;
  uint32_t priority = 0;
};

struct LinuxNetwork {
  std::optional<uint32_t> class_id;
  std::vector<LinuxInterfacePriority> priorities;
};

struct LinuxRdma {
  std::optional<uint32_t> hca_handles;
  std::optional<uint32_t> hca_objects;
};

struct LinuxResources {
  std::vector<LinuxDeviceCgroup> devices;
  std::optional<LinuxMemory> memory;
  std::optional<LinuxCpu> cpu;
  std::optional<LinuxPids> pids;
  std::optional<LinuxBlockIo> block_io;
  std::vector<LinuxHugepageLimit> hugepage_limits;
  std::optional<LinuxNetwork> network;
  std::map<std::string, LinuxRdma> rdma;             // device name -> limits
  std::map<std::string, std::string> unified;        // cgroup v2 file -> value
};

// Parses a linux.resources object. Unknown fields are ignored; errors name the
// field path, e.g. "linux.resources.memory.limit: expected an integer".
// `where` is the path of `j` itself (the update verb passes its own).
// The result has gone through clear_unset_zeros().
Result<LinuxResources> parse_resources(const nlohmann::json& j, const std::string& where = "linux.resources");

// Unsets the fields where a zero means "not set" to runc, whose reading every
// engine relies on (Docker sends "blockIO": {"weight": 0}, "cpu": {"shares": 0},
// zero memory limits and "pids": {"limit": 0} in every config and update):
// memory limit/reservation/swap/kernel/kernelTCP, cpu shares/quota/period/realtimeRuntime/realtimePeriod, empty cpus/mems,
// pids limit (-1 stays: unlimited), blockIO weight/leafWeight and per-device
// weights, network classID. Swappiness -1 is unset at parse time. Zeros
// elsewhere (hugepage limits, throttle rates, cpu idle/burst, swappiness 0)
// are real values and stay.
void clear_unset_zeros(LinuxResources& r);

// The inverse of parse_resources: only set fields appear.
nlohmann::json to_json(const LinuxResources& r);

}  // namespace vessel::oci
