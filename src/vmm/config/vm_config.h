// VmConfig: everything that describes a VM, with Firecracker's names
// (https://github.com/firecracker-microvm/firecracker swagger / config file):
// boot-source, machine-config, drives, network-interfaces, entropy, logger,
// metrics, plus vessel's own keys under "vessel" where Firecracker has none.
//
// JSON from outside (API bodies, --config-file) is read field by field, by
// type; an error names the field ("drives[0].path_on_host: expected a
// string"), unknown fields are rejected as Firecracker does. Nothing here
// opens a file or touches KVM: building a Machine is vm_builder.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/error.h"

namespace vessel::vmm {

// Firecracker's TokenBucket: `size` tokens refilled every `refill_time` ms,
// plus a one-time burst. vessel's limiter takes a rate: size / refill_time.
struct TokenBucketConfig {
  uint64_t size = 0;
  uint64_t one_time_burst = 0;
  uint64_t refill_time_ms = 0;
  // Tokens per second (0: unlimited).
  uint64_t per_second() const;
};

// Firecracker's RateLimiter: a bandwidth (bytes) and an ops bucket.
struct RateLimiterConfig {
  std::optional<TokenBucketConfig> bandwidth;
  std::optional<TokenBucketConfig> ops;
  uint64_t bytes_per_second() const { return bandwidth ? bandwidth->per_second() : 0; }
  uint64_t ops_per_second() const { return ops ? ops->per_second() : 0; }
};

// PUT /boot-source.
struct BootSourceConfig {
  std::string kernel_image_path;
  std::string boot_args;  // empty: kDefaultBootArgs
  std::string initrd_path;
};

// PUT /machine-config.
struct MachineSpec {
  unsigned vcpu_count = 1;
  uint64_t mem_size_mib = 128;
  bool smt = false;
  bool track_dirty_pages = false;
};

// PUT /drives/{id}: a virtio-blk disk.
struct DriveConfig {
  std::string drive_id;
  std::string path_on_host;
  bool is_root_device = false;
  bool is_read_only = false;
  std::string partuuid;  // root=PARTUUID= instead of /dev/vda
  std::optional<RateLimiterConfig> rate_limiter;
  std::string serial;  // vessel: virtio-blk serial (20 bytes at most)
};

// PUT /network-interfaces/{id}: a virtio-net device on a host tap.
struct NetConfig {
  std::string iface_id;
  std::string host_dev_name;
  std::string guest_mac;  // empty: random locally administered
  std::optional<RateLimiterConfig> rx_rate_limiter;
  std::optional<RateLimiterConfig> tx_rate_limiter;
};

// PUT /entropy: a virtio-rng device.
struct EntropyConfig {
  std::optional<RateLimiterConfig> rate_limiter;
};

// PUT /balloon: a virtio-balloon device (Firecracker's Balloon, plus
// free_page_reporting, which Firecracker calls the same in newer versions).
struct BalloonConfig {
  uint64_t amount_mib = 0;  // the balloon's target: memory taken from the guest
  bool deflate_on_oom = false;
  uint32_t stats_polling_interval_s = 0;
  bool free_page_reporting = false;
};

// PUT /vsock: a virtio-vsock device with Firecracker's unix-socket mapping.
struct VsockConfig {
  uint64_t guest_cid = 3;
  std::string uds_path;
};

// PUT /logger: where the VMM's log lines go.
struct LoggerConfig {
  std::string log_path;
  std::string level = "Warning";  // Error | Warning | Info | Debug | Trace | Off
  bool show_level = false;
  bool show_log_origin = false;
  std::string module;
};

// Firecracker flushes metrics every 60 s.
inline constexpr unsigned kDefaultMetricsIntervalS = 60;

// PUT /metrics: a file or FIFO receiving one JSON line per flush (periodic,
// FlushMetrics, and when the VM stops).
struct MetricsConfig {
  std::string metrics_path;
  unsigned flush_interval_s = kDefaultMetricsIntervalS;  // vessel's field: the period
};

// Everything that describes one VM.
struct VmConfig {
  std::optional<BootSourceConfig> boot_source;
  MachineSpec machine;
  std::vector<DriveConfig> drives;
  std::vector<NetConfig> nets;
  std::optional<EntropyConfig> entropy;
  std::optional<BalloonConfig> balloon;
  std::optional<VsockConfig> vsock;
  std::optional<LoggerConfig> logger;
  std::optional<MetricsConfig> metrics;
  // vessel keys ("vessel": {...}).
  std::string kvm_device = "/dev/kvm";
  // Guest RAM that KSM may merge ("vessel": {"mem_mergeable": true}); off
  // by default: page sharing between guests is a timing side channel.
  bool mem_mergeable = false;
  // Entries of each vCPU's KVM dirty ring where the host offers one
  // ("vessel": {"dirty_ring_entries": N, e.g. 4096}; 0, the default: the memory
  // slots' dirty bitmaps; QEMU's dirty-ring-size, counted in entries, also off
  // by default). Off by default: with rings on every VM, the VM harness's L1
  // wedged again and again (see README, "Dirty pages").
  uint32_t dirty_ring_entries = kDefaultDirtyRingEntries;
  static constexpr uint32_t kDefaultDirtyRingEntries = 0;

  // Boot arguments with root= added for a root drive (as Firecracker does).
  std::string effective_boot_args() const;
  // The drives in device order: the root device first.
  std::vector<const DriveConfig*> drives_in_order() const;
};

inline constexpr const char* kDefaultBootArgs = "console=ttyS0 reboot=k panic=1 pci=off";
inline constexpr unsigned kMaxVcpus = 32;  // Firecracker's limit
inline constexpr uint64_t kMinMemMib = 4;

// Parsers of the API bodies. `where` prefixes field names in errors.
Result<BootSourceConfig> parse_boot_source(const nlohmann::json& j, const std::string& where = "");
// `base` supplies fields a PATCH leaves out; `full` requires vcpu_count and mem_size_mib.
Result<MachineSpec> parse_machine_spec(const nlohmann::json& j, const MachineSpec& base, bool full,
                                       const std::string& where = "");
Result<DriveConfig> parse_drive(const nlohmann::json& j, const std::string& where = "");
Result<NetConfig> parse_net(const nlohmann::json& j, const std::string& where = "");
Result<EntropyConfig> parse_entropy(const nlohmann::json& j, const std::string& where = "");
// `mem_mib`: the guest's memory, which the balloon must stay below.
Result<BalloonConfig> parse_balloon(const nlohmann::json& j, const std::string& where = "");
Result<VsockConfig> parse_vsock(const nlohmann::json& j, const std::string& where = "");
nlohmann::json balloon_json(const BalloonConfig& b);
Result<LoggerConfig> parse_logger(const nlohmann::json& j, const std::string& where = "");
Result<MetricsConfig> parse_metrics(const nlohmann::json& j, const std::string& where = "");
Result<RateLimiterConfig> parse_rate_limiter(const nlohmann::json& j, const std::string& where);

// Firecracker's config file (--config-file / GET /vm/config): the keys
// boot-source, machine-config, drives, network-interfaces, entropy,
// balloon, vsock, logger, metrics and vessel.
Result<VmConfig> parse_vm_config(const nlohmann::json& j);
// Parses text (at most kMaxConfigBytes) and then parse_vm_config().
Result<VmConfig> parse_vm_config_text(std::string_view text);
inline constexpr size_t kMaxConfigBytes = 1 << 20;
nlohmann::json to_json(const VmConfig& c);

// Checks a whole config before a start: a kernel is set, ids are unique,
// at most one root drive, MACs parse. Opens nothing.
Status validate_for_start(const VmConfig& c);

// Parses a JSON document from outside; the error gives the byte position.
Result<nlohmann::json> parse_json(std::string_view text);

}  // namespace vessel::vmm
