#include "vmm/device_options.h"

#include "common/strings.h"

namespace vessel::vmm {

namespace {
// Splits "key=value" (value empty when there is no '=').
std::pair<std::string, std::string> key_value(const std::string& item) {
  auto eq = item.find('=');
  if (eq == std::string::npos) return {item, ""};
  return {item.substr(0, eq), item.substr(eq + 1)};
}

Result<uint64_t> rate(const std::string& key, const std::string& v) {
  auto n = parse_size(v);
  if (!n || *n == 0) return Error::invalid(cat(key, "=", v, ": expected a positive number"));
  return *n;
}
}  // namespace

Result<virtio::MacAddress> parse_mac(const std::string& s) {
  virtio::MacAddress mac{};
  auto parts = split(s, ':');
  if (parts.size() != 6) return Error::invalid(cat("bad MAC address '", s, "'"));
  for (size_t i = 0; i < 6; ++i) {
    const std::string& p = parts[i];
    if (p.size() != 2 || !isxdigit(static_cast<unsigned char>(p[0])) || !isxdigit(static_cast<unsigned char>(p[1])))
      return Error::invalid(cat("bad MAC address '", s, "'"));
    mac[i] = static_cast<uint8_t>(std::stoul(p, nullptr, 16));
  }
  if (mac[0] & 1) return Error::invalid(cat("MAC address '", s, "' is multicast"));
  return mac;
}

Result<DiskSpec> parse_disk_spec(const std::string& spec) {
  auto items = split(spec, ',');
  DiskSpec d;
  if (items.empty() || items[0].empty()) return Error::invalid("--disk: missing image path");
  d.path = items[0];
  for (size_t i = 1; i < items.size(); ++i) {
    auto [k, v] = key_value(items[i]);
    if (k == "readonly" || k == "ro") {
      if (!v.empty() && v != "on" && v != "true") return Error::invalid(cat("--disk ", spec, ": readonly takes no value"));
      d.options.readonly = true;
    } else if (k == "serial") {
      if (v.size() > virtio::blk::kIdBytes) return Error::invalid(cat("--disk ", spec, ": serial is longer than 20 bytes"));
      d.options.serial = v;
    } else if (k == "bandwidth") {
      d.options.bandwidth = TRYC(rate(k, v), cat("--disk ", spec));
    } else if (k == "iops") {
      d.options.iops = TRYC(rate(k, v), cat("--disk ", spec));
    } else {
      return Error::invalid(cat("--disk ", spec, ": unknown option '", k, "'"));
    }
  }
  return d;
}

Result<virtio::NetOptions> parse_net_spec(const std::string& spec) {
  virtio::NetOptions n;
  for (const auto& item : split(spec, ',')) {
    auto [k, v] = key_value(item);
    if (k == "tap") {
      if (v.empty() || v.size() > 15) return Error::invalid(cat("--net ", spec, ": bad tap name"));
      n.tap = v;
    } else if (k == "mac") {
      n.mac = TRYC(parse_mac(v), cat("--net ", spec));
      n.mac_set = true;
    } else if (k == "bandwidth") {
      n.bandwidth = TRYC(rate(k, v), cat("--net ", spec));
    } else if (k == "iops") {
      n.iops = TRYC(rate(k, v), cat("--net ", spec));
    } else {
      return Error::invalid(cat("--net ", spec, ": unknown option '", k, "'"));
    }
  }
  if (n.tap.empty()) return Error::invalid(cat("--net ", spec, ": tap=NAME is required"));
  return n;
}

Result<virtio::BalloonOptions> parse_balloon_spec(const std::string& spec) {
  virtio::BalloonOptions b;
  auto items = split(spec, ',');
  if (items.empty() || items[0].empty()) return Error::invalid("--balloon: missing size (e.g. 0 or 256M)");
  auto size = parse_size(items[0]);
  if (!size || *size % (1 << 20) != 0 || *size / virtio::kBalloonPageSize > UINT32_MAX)
    return Error::invalid(cat("--balloon ", spec, ": '", items[0], "' is not a size in whole MiB (e.g. 0, 256M)"));
  b.target_pages = static_cast<uint32_t>(*size / virtio::kBalloonPageSize);
  for (size_t i = 1; i < items.size(); ++i) {
    auto [k, v] = key_value(items[i]);
    if (k == "deflate_on_oom" && v.empty()) {
      b.deflate_on_oom = true;
    } else if (k == "reporting" && v.empty()) {
      b.free_page_reporting = true;
    } else if (k == "stats") {
      auto secs = parse_u64(v);
      if (!secs || *secs > 86400) return Error::invalid(cat("--balloon ", spec, ": stats=", v, ": expected seconds (0 to 86400)"));
      b.stats_interval_s = static_cast<uint32_t>(*secs);
    } else {
      return Error::invalid(cat("--balloon ", spec, ": unknown option '", items[i], "'"));
    }
  }
  return b;
}

Result<virtio::VsockOptions> parse_vsock_spec(const std::string& spec) {
  virtio::VsockOptions o;
  bool have_cid = false;
  for (const auto& item : split(spec, ',')) {
    auto [k, v] = key_value(item);
    if (k == "cid") {
      auto n = parse_u64(v);
      if (!n || *n < virtio::vsock::kMinGuestCid ||
          *n > virtio::vsock::kMaxGuestCid)
        return Error::invalid(cat("--vsock ", spec, ": cid must be a number from 3 to 4294967294"));
      o.guest_cid = *n;
      have_cid = true;
    } else if (k == "uds") {
      if (v.empty()) return Error::invalid(cat("--vsock ", spec, ": uds=PATH is empty"));
      o.uds_path = v;
    } else {
      return Error::invalid(cat("--vsock ", spec, ": unknown option '", k, "'"));
    }
  }
  if (!have_cid || o.uds_path.empty()) return Error::invalid(cat("--vsock ", spec, ": cid=N and uds=PATH are required"));
  return o;
}

}  // namespace vessel::vmm
