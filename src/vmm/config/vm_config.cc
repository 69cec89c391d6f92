#include "vmm/config/vm_config.h"

#include <set>

#include "common/strings.h"
#include "vmm/config/json_reader.h"
#include "vmm/device_options.h"

namespace vessel::vmm {

using nlohmann::json;

uint64_t TokenBucketConfig::per_second() const {
  if (size == 0 || refill_time_ms == 0) return 0;
  unsigned __int128 r = static_cast<unsigned __int128>(size) * 1000 / refill_time_ms;
  if (r == 0) return 1;
  return r > UINT64_MAX ? UINT64_MAX : static_cast<uint64_t>(r);
}

Result<json> parse_json(std::string_view text) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // "[json.exception.parse_error.101] parse error at line 1, column 3: ..." -> the part after "] ".
    std::string what = e.what();
    auto p = what.find("] ");
    return Error::invalid(cat("malformed JSON: ", p == std::string::npos ? what : what.substr(p + 2)));
  }
}

namespace {

Result<TokenBucketConfig> parse_bucket(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  TokenBucketConfig b;
  b.size = TRY(r.req_u64("size"));
  b.one_time_burst = TRY(r.u64("one_time_burst")).value_or(0);
  b.refill_time_ms = TRY(r.req_u64("refill_time"));
  TRY(r.finish());
  if (b.size > 0 && b.refill_time_ms == 0) return Error::invalid(cat(where, ".refill_time: must be positive"));
  return b;
}

// An optional nested rate limiter.
Result<std::optional<RateLimiterConfig>> opt_limiter(JsonReader& r, const std::string& key) {
  const auto* v = r.find(key);
  if (!v) return std::optional<RateLimiterConfig>();
  return std::optional<RateLimiterConfig>(TRY(parse_rate_limiter(*v, r.name(key))));
}

json bucket_json(const TokenBucketConfig& b) {
  json j{{"size", b.size}, {"refill_time", b.refill_time_ms}};
  if (b.one_time_burst) j["one_time_burst"] = b.one_time_burst;
  return j;
}

json limiter_json(const RateLimiterConfig& l) {
  json j = json::object();
  if (l.bandwidth) j["bandwidth"] = bucket_json(*l.bandwidth);
  if (l.ops) j["ops"] = bucket_json(*l.ops);
  return j;
}

// An id used in a path: Firecracker allows alphanumerics and '_'; vessel also '-' and '.'.
Status check_id(const std::string& id, const std::string& field) {
  if (id.empty() || id.size() > 64) return Error::invalid(cat(field, ": must be 1 to 64 characters"));
  for (char c : id)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.')
      return Error::invalid(cat(field, ": '", id, "' may only contain letters, digits, '_', '-' and '.'"));
  return ok();
}

Status check_path(const std::string& path, const std::string& field) {
  if (path.empty()) return Error::invalid(cat(field, ": must not be empty"));
  if (path.size() > 4096) return Error::invalid(cat(field, ": longer than 4096 bytes"));
  if (path.find('\0') != std::string::npos) return Error::invalid(cat(field, ": contains a NUL byte"));
  return ok();
}

}  // namespace

Result<RateLimiterConfig> parse_rate_limiter(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  RateLimiterConfig l;
  if (const auto* v = r.find("bandwidth")) l.bandwidth = TRY(parse_bucket(*v, r.name("bandwidth")));
  if (const auto* v = r.find("ops")) l.ops = TRY(parse_bucket(*v, r.name("ops")));
  TRY(r.finish());
  return l;
}

Result<BootSourceConfig> parse_boot_source(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  BootSourceConfig b;
  b.kernel_image_path = TRY(r.req_str("kernel_image_path"));
  TRY(check_path(b.kernel_image_path, r.name("kernel_image_path")));
  b.boot_args = TRY(r.str("boot_args")).value_or("");
  if (b.boot_args.size() > 2048) return Error::invalid(cat(r.name("boot_args"), ": longer than 2048 bytes"));
  b.initrd_path = TRY(r.str("initrd_path")).value_or("");
  if (!b.initrd_path.empty()) TRY(check_path(b.initrd_path, r.name("initrd_path")));
  TRY(r.finish());
  return b;
}

Result<MachineSpec> parse_machine_spec(const json& j, const MachineSpec& base, bool full, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  MachineSpec m = base;
  auto vcpus = full ? std::optional<uint64_t>(TRY(r.req_u64("vcpu_count"))) : TRY(r.u64("vcpu_count"));
  auto mem = full ? std::optional<uint64_t>(TRY(r.req_u64("mem_size_mib"))) : TRY(r.u64("mem_size_mib"));
  if (vcpus) {
    if (*vcpus == 0 || *vcpus > kMaxVcpus)
      return Error::invalid(cat(r.name("vcpu_count"), ": must be between 1 and ", kMaxVcpus, ", not ", *vcpus));
    m.vcpu_count = static_cast<unsigned>(*vcpus);
  }
  if (mem) {
    if (*mem < kMinMemMib || *mem > (1ULL << 30))
      return Error::invalid(cat(r.name("mem_size_mib"), ": must be between ", kMinMemMib, " and 2^30, not ", *mem));
    m.mem_size_mib = *mem;
  }
  if (auto smt = TRY(r.boolean("smt"))) {
    if (*smt) return Error::invalid(cat(r.name("smt"), ": true is not supported (one thread per core)"));
    m.smt = false;
  }
  if (auto t = TRY(r.boolean("track_dirty_pages"))) m.track_dirty_pages = *t;
  if (auto t = TRY(r.str("cpu_template")); t && *t != "None" && !t->empty())
    return Error::invalid(cat(r.name("cpu_template"), ": '", *t, "' is not supported (only None)"));
  if (auto h = TRY(r.str("huge_pages")); h && *h != "None")
    return Error::invalid(cat(r.name("huge_pages"), ": '", *h, "' is not supported (only None)"));
  TRY(r.finish());
  return m;
}

Result<DriveConfig> parse_drive(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  DriveConfig d;
  d.drive_id = TRY(r.req_str("drive_id"));
  TRY(check_id(d.drive_id, r.name("drive_id")));
  d.path_on_host = TRY(r.req_str("path_on_host"));
  TRY(check_path(d.path_on_host, r.name("path_on_host")));
  d.is_root_device = TRY(r.boolean("is_root_device")).value_or(false);
  d.is_read_only = TRY(r.boolean("is_read_only")).value_or(false);
  d.partuuid = TRY(r.str("partuuid")).value_or("");
  for (char c : d.partuuid)
    if (!isxdigit(static_cast<unsigned char>(c)) && c != '-')
      return Error::invalid(cat(r.name("partuuid"), ": '", d.partuuid, "' is not a partition UUID"));
  d.rate_limiter = TRY(opt_limiter(r, "rate_limiter"));
  if (auto c = TRY(r.str("cache_type")); c && *c != "Unsafe" && *c != "Writeback")
    return Error::invalid(cat(r.name("cache_type"), ": must be Unsafe or Writeback"));
  if (auto e = TRY(r.str("io_engine")); e && *e != "Sync")
    return Error::invalid(cat(r.name("io_engine"), ": '", *e, "' is not supported (only Sync)"));
  d.serial = TRY(r.str("serial")).value_or("");
  if (d.serial.size() > 20) return Error::invalid(cat(r.name("serial"), ": longer than 20 bytes"));
  TRY(r.finish());
  return d;
}

Result<NetConfig> parse_net(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  NetConfig n;
  n.iface_id = TRY(r.req_str("iface_id"));
  TRY(check_id(n.iface_id, r.name("iface_id")));
  n.host_dev_name = TRY(r.req_str("host_dev_name"));
  if (n.host_dev_name.empty() || n.host_dev_name.size() > 15 || n.host_dev_name.find('/') != std::string::npos)
    return Error::invalid(cat(r.name("host_dev_name"), ": '", n.host_dev_name, "' is not a tap name (1 to 15 bytes)"));
  n.guest_mac = TRY(r.str("guest_mac")).value_or("");
  if (!n.guest_mac.empty()) TRYC(parse_mac(n.guest_mac), r.name("guest_mac"));
  n.rx_rate_limiter = TRY(opt_limiter(r, "rx_rate_limiter"));
  n.tx_rate_limiter = TRY(opt_limiter(r, "tx_rate_limiter"));
  TRY(r.finish());
  return n;
}

Result<EntropyConfig> parse_entropy(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  EntropyConfig e;
  e.rate_limiter = TRY(opt_limiter(r, "rate_limiter"));
  if (e.rate_limiter && (e.rate_limiter->bandwidth || e.rate_limiter->ops))
    return Error::invalid(cat(r.name("rate_limiter"), ": the entropy device has no rate limiter in vessel"));
  TRY(r.finish());
  return e;
}

Result<BalloonConfig> parse_balloon(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  BalloonConfig b;
  b.amount_mib = TRY(r.req_u64("amount_mib"));
  if (b.amount_mib > (1ULL << 24)) return Error::invalid(cat(r.name("amount_mib"), ": ", b.amount_mib, " MiB is more than any guest has"));
  auto oom = TRY(r.boolean("deflate_on_oom"));
  if (!oom) return Error::invalid(cat(r.name("deflate_on_oom"), ": missing"));
  b.deflate_on_oom = *oom;
  uint64_t secs = TRY(r.u64("stats_polling_interval_s")).value_or(0);
  if (secs > 86400) return Error::invalid(cat(r.name("stats_polling_interval_s"), ": at most 86400 seconds"));
  b.stats_polling_interval_s = static_cast<uint32_t>(secs);
  b.free_page_reporting = TRY(r.boolean("free_page_reporting")).value_or(false);
  TRY(r.finish());
  return b;
}

json balloon_json(const BalloonConfig& b) {
  return {{"amount_mib", b.amount_mib},
          {"deflate_on_oom", b.deflate_on_oom},
          {"stats_polling_interval_s", b.stats_polling_interval_s},
          {"free_page_reporting", b.free_page_reporting}};
}

Result<VsockConfig> parse_vsock(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  VsockConfig v;
  (void)TRY(r.str("vsock_id"));  // deprecated in Firecracker, accepted and ignored
  v.guest_cid = TRY(r.req_u64("guest_cid"));
  if (v.guest_cid < 3 || v.guest_cid > 0xfffffffeULL)
    return Error::invalid(cat(r.name("guest_cid"), ": must be from 3 to 4294967294, not ", v.guest_cid));
  v.uds_path = TRY(r.req_str("uds_path"));
  TRY(check_path(v.uds_path, r.name("uds_path")));
  TRY(r.finish());
  return v;
}

Result<LoggerConfig> parse_logger(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  LoggerConfig l;
  l.log_path = TRY(r.str("log_path")).value_or("");
  if (!l.log_path.empty()) TRY(check_path(l.log_path, r.name("log_path")));
  l.level = TRY(r.str("level")).value_or("Warning");
  static const std::set<std::string> kLevels{"Error", "Warning", "Warn", "Info", "Debug", "Trace", "Off",
                                             "error", "warning", "warn", "info", "debug", "trace", "off"};
  if (!kLevels.count(l.level))
    return Error::invalid(cat(r.name("level"), ": '", l.level, "' is not one of Error, Warning, Info, Debug, Trace, Off"));
  l.show_level = TRY(r.boolean("show_level")).value_or(false);
  l.show_log_origin = TRY(r.boolean("show_log_origin")).value_or(false);
  l.module = TRY(r.str("module")).value_or("");
  TRY(r.finish());
  return l;
}

Result<MetricsConfig> parse_metrics(const json& j, const std::string& where) {
  JsonReader r(j, where);
  TRY(r.check_object());
  MetricsConfig m;
  m.metrics_path = TRY(r.req_str("metrics_path"));
  TRY(check_path(m.metrics_path, r.name("metrics_path")));
  if (auto s = TRY(r.u64("flush_interval_s"))) {
    if (*s == 0 || *s > 86400) return Error::invalid(cat(r.name("flush_interval_s"), ": must be 1..86400 seconds"));
    m.flush_interval_s = static_cast<unsigned>(*s);
  }
  TRY(r.finish());
  return m;
}

Result<VmConfig> parse_vm_config(const json& j) {
  JsonReader r(j, "");
  TRY(r.check_object());
  VmConfig c;
  if (const auto* v = r.find("boot-source")) c.boot_source = TRY(parse_boot_source(*v, "boot-source"));
  if (const auto* v = r.find("machine-config")) c.machine = TRY(parse_machine_spec(*v, c.machine, true, "machine-config"));
  auto list = [&](const char* key, auto parse, auto& out) -> Status {
    const auto* v = r.find(key);
    if (!v) return ok();
    if (!v->is_array()) return Error::invalid(cat(key, ": expected an array"));
    for (size_t i = 0; i < v->size(); ++i) out.push_back(TRY(parse((*v)[i], cat(key, "[", i, "]"))));
    return ok();
  };
  TRY(list("drives", parse_drive, c.drives));
  TRY(list("network-interfaces", parse_net, c.nets));
  if (const auto* v = r.find("entropy")) c.entropy = TRY(parse_entropy(*v, "entropy"));
  if (const auto* v = r.find("balloon")) c.balloon = TRY(parse_balloon(*v, "balloon"));
  if (const auto* v = r.find("vsock")) c.vsock = TRY(parse_vsock(*v, "vsock"));
  if (const auto* v = r.find("logger")) c.logger = TRY(parse_logger(*v, "logger"));
  if (const auto* v = r.find("metrics")) c.metrics = TRY(parse_metrics(*v, "metrics"));
  if (const auto* v = r.find("vessel")) {
    JsonReader vr(*v, "vessel");
    TRY(vr.check_object());
    c.kvm_device = TRY(vr.str("kvm_device")).value_or(c.kvm_device);
    TRY(check_path(c.kvm_device, "vessel.kvm_device"));
    c.mem_mergeable = TRY(vr.boolean("mem_mergeable")).value_or(false);
    if (auto n = TRY(vr.u64("dirty_ring_entries"))) {
      if (*n != 0 && (*n < 256 || *n > 65536 || (*n & (*n - 1)) != 0))
        return Error::invalid(cat("vessel.dirty_ring_entries: must be 0 (dirty bitmaps) or a power of two from 256 to "
                                  "65536, not ", *n));
      c.dirty_ring_entries = static_cast<uint32_t>(*n);
    }
    TRY(vr.finish());
  }
  TRY(r.finish());
  std::set<std::string> ids;
  for (size_t i = 0; i < c.drives.size(); ++i)
    if (!ids.insert(c.drives[i].drive_id).second)
      return Error::invalid(cat("drives[", i, "].drive_id: '", c.drives[i].drive_id, "' is used twice"));
  ids.clear();
  for (size_t i = 0; i < c.nets.size(); ++i)
    if (!ids.insert(c.nets[i].iface_id).second)
      return Error::invalid(cat("network-interfaces[", i, "].iface_id: '", c.nets[i].iface_id, "' is used twice"));
  return c;
}

Result<VmConfig> parse_vm_config_text(std::string_view text) {
  if (text.size() > kMaxConfigBytes) return Error::invalid(cat("config larger than ", kMaxConfigBytes, " bytes"));
  json j = TRY(parse_json(text));
  return parse_vm_config(j);
}

json to_json(const VmConfig& c) {
  json j = json::object();
  if (c.boot_source) {
    json b{{"kernel_image_path", c.boot_source->kernel_image_path}, {"boot_args", c.boot_source->boot_args}};
    if (!c.boot_source->initrd_path.empty()) b["initrd_path"] = c.boot_source->initrd_path;
    j["boot-source"] = b;
  }
  j["machine-config"] = {{"vcpu_count", c.machine.vcpu_count},
                         {"mem_size_mib", c.machine.mem_size_mib},
                         {"smt", c.machine.smt},
                         {"track_dirty_pages", c.machine.track_dirty_pages}};
  json drives = json::array();
  for (const auto& d : c.drives) {
    json dj{{"drive_id", d.drive_id},
            {"path_on_host", d.path_on_host},
            {"is_root_device", d.is_root_device},
            {"is_read_only", d.is_read_only}};
    if (!d.partuuid.empty()) dj["partuuid"] = d.partuuid;
    if (d.rate_limiter) dj["rate_limiter"] = limiter_json(*d.rate_limiter);
    if (!d.serial.empty()) dj["serial"] = d.serial;
    drives.push_back(dj);
  }
  j["drives"] = drives;
  json nets = json::array();
  for (const auto& n : c.nets) {
    json nj{{"iface_id", n.iface_id}, {"host_dev_name", n.host_dev_name}};
    if (!n.guest_mac.empty()) nj["guest_mac"] = n.guest_mac;
    if (n.rx_rate_limiter) nj["rx_rate_limiter"] = limiter_json(*n.rx_rate_limiter);
    if (n.tx_rate_limiter) nj["tx_rate_limiter"] = limiter_json(*n.tx_rate_limiter);
    nets.push_back(nj);
  }
  j["network-interfaces"] = nets;
  if (c.entropy) j["entropy"] = json::object();
  if (c.balloon) j["balloon"] = balloon_json(*c.balloon);
  if (c.vsock) j["vsock"] = {{"guest_cid", c.vsock->guest_cid}, {"uds_path", c.vsock->uds_path}};
  if (c.logger)
    j["logger"] = {{"log_path", c.logger->log_path},
                   {"level", c.logger->level},
                   {"show_level", c.logger->show_level},
                   {"show_log_origin", c.logger->show_log_origin}};
  if (c.metrics) {
    j["metrics"] = {{"metrics_path", c.metrics->metrics_path}};
    if (c.metrics->flush_interval_s != kDefaultMetricsIntervalS) j["metrics"]["flush_interval_s"] = c.metrics->flush_interval_s;
  }
  if (c.kvm_device != "/dev/kvm") j["vessel"]["kvm_device"] = c.kvm_device;
  if (c.mem_mergeable) j["vessel"]["mem_mergeable"] = true;
  if (c.dirty_ring_entries != VmConfig::kDefaultDirtyRingEntries) j["vessel"]["dirty_ring_entries"] = c.dirty_ring_entries;
  return j;
}

std::vector<const DriveConfig*> VmConfig::drives_in_order() const {
  std::vector<const DriveConfig*> out;
  for (const auto& d : drives)
    if (d.is_root_device) out.push_back(&d);
  for (const auto& d : drives)
    if (!d.is_root_device) out.push_back(&d);
  return out;
}

std::string VmConfig::effective_boot_args() const {
  std::string args = boot_source && !boot_source->boot_args.empty() ? boot_source->boot_args : kDefaultBootArgs;
  for (const auto& d : drives) {
    if (!d.is_root_device) continue;
    args += d.partuuid.empty() ? " root=/dev/vda" : " root=PARTUUID=" + d.partuuid;
    args += d.is_read_only ? " ro" : " rw";
  }
  return args;
}

Status validate_for_start(const VmConfig& c) {
  if (!c.boot_source || c.boot_source->kernel_image_path.empty())
    return Error::invalid("boot-source: no kernel_image_path configured (PUT /boot-source first)");
  int roots = 0;
  for (const auto& d : c.drives) roots += d.is_root_device;
  if (roots > 1) return Error::invalid("drives: more than one is_root_device");
  if (c.drives.size() + c.nets.size() + (c.entropy ? 1 : 0) + (c.balloon ? 1 : 0) + (c.vsock ? 1 : 0) > 16)
    return Error::invalid("too many devices: drives, network interfaces, entropy, balloon and vsock are 16 at most");
  if (c.balloon && c.balloon->amount_mib >= c.machine.mem_size_mib)
    return Error::invalid(cat("balloon.amount_mib: ", c.balloon->amount_mib, " MiB is not less than the guest's memory (",
                              c.machine.mem_size_mib, " MiB)"));
  return ok();
}

}  // namespace vessel::vmm
