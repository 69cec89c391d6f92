#include "oci/resources.h"

#include <limits>
#include <type_traits>

#include "common/strings.h"

namespace vessel::oci {
namespace {

using nlohmann::json;

// Reads optional field `key` of object `o` into `out`; `where` is the path of `o`.
// A JSON null counts as unset.
template <class T>
Status get(const json& o, const char* key, const std::string& where, std::optional<T>& out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return ok();
  std::string path = cat(where, ".", key);
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return Error::invalid(cat(path, ": expected a boolean"));
    out = it->get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return Error::invalid(cat(path, ": expected a string"));
    out = it->get<std::string>();
  } else if constexpr (std::is_unsigned_v<T>) {
    if (!it->is_number_integer()) return Error::invalid(cat(path, ": expected an integer"));
    if (it->is_number_unsigned()) {
      uint64_t v = it->get<uint64_t>();
      if (v > std::numeric_limits<T>::max()) return Error::invalid(cat(path, ": value out of range"));
      out = static_cast<T>(v);
    } else {
      int64_t v = it->get<int64_t>();
      if (v < 0 || static_cast<uint64_t>(v) > std::numeric_limits<T>::max())
        return Error::invalid(cat(path, ": value out of range"));
      out = static_cast<T>(v);
    }
  } else {
    static_assert(std::is_same_v<T, int64_t>);
    if (!it->is_number_integer()) return Error::invalid(cat(path, ": expected an integer"));
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      // -1 written as 18446744073709551615 by some tools: accept the two's complement.
      out = static_cast<int64_t>(it->get<uint64_t>());
    } else {
      out = it->get<int64_t>();
    }
  }
  return ok();
}

// Like get(), but the field must be present.
template <class T>
Status get_required(const json& o, const char* key, const std::string& where, T& out) {
  std::optional<T> v;
  TRY(get(o, key, where, v));
  if (!v) return Error::invalid(cat(where, ".", key, ": required"));
  out = *v;
  return ok();
}

// Returns the array at o[key] (an empty one when absent), or an error when it is not an array.
Result<const json*> get_array(const json& o, const char* key, const std::string& where) {
  static const json kEmpty = json::array();
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return &kEmpty;
  if (!it->is_array()) return Error::invalid(cat(where, ".", key, ": expected an array"));
  return &*it;
}

Result<const json*> get_object(const json& o, const char* key, const std::string& where) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_object()) return Error::invalid(cat(where, ".", key, ": expected an object"));
  return &*it;
}

Status require_object(const json& o, const std::string& where) {
  if (!o.is_object()) return Error::invalid(cat(where, ": expected an object"));
  return ok();
}

Result<LinuxDeviceCgroup> parse_device_rule(const json& o, const std::string& w) {
  TRY(require_object(o, w));
  LinuxDeviceCgroup d;
  TRY(get_required(o, "allow", w, d.allow));
  TRY(get(o, "type", w, d.type));
  TRY(get(o, "major", w, d.major));
  TRY(get(o, "minor", w, d.minor));
  TRY(get(o, "access", w, d.access));
  if (d.type && *d.type != "a" && *d.type != "c" && *d.type != "b")
    return Error::invalid(cat(w, ".type: must be \"a\", \"c\" or \"b\", not \"", *d.type, "\""));
  if (d.access && !d.access->empty()) {
    // As runc: letters other than r, w and m ("rwa") are ignored; an access with none of
    // them would read as "everything" (empty means rwm), so it is refused.
    std::string kept;
    for (char c : std::string("rwm"))
      if (d.access->find(c) != std::string::npos) kept += c;
    if (kept.empty())
      return Error::invalid(cat(w, ".access: must contain r, w or m, not \"", *d.access, "\""));
    d.access = kept;
  }
  return d;
}

Result<LinuxMemory> parse_memory(const json& o, const std::string& w) {
  LinuxMemory m;
  TRY(get(o, "limit", w, m.limit));
  TRY(get(o, "reservation", w, m.reservation));
  TRY(get(o, "swap", w, m.swap));
  TRY(get(o, "kernel", w, m.kernel));
  TRY(get(o, "kernelTCP", w, m.kernel_tcp));
  // -1 (or its uint64 two's complement) is "not set" for swappiness, as in runc.
  if (auto it = o.find("swappiness");
      it != o.end() && it->is_number_integer() &&
      (it->is_number_unsigned() ? it->get<uint64_t>() == std::numeric_limits<uint64_t>::max() : it->get<int64_t>() == -1)) {
    m.swappiness.reset();
  } else {
    TRY(get(o, "swappiness", w, m.swappiness));
  }
  TRY(get(o, "disableOOMKiller", w, m.disable_oom_killer));
  TRY(get(o, "useHierarchy", w, m.use_hierarchy));
  TRY(get(o, "checkBeforeUpdate", w, m.check_before_update));
  if (m.swappiness && *m.swappiness > 100)
    return Error::invalid(cat(w, ".swappiness: must be between 0 and 100, not ", *m.swappiness));
  return m;
}

Result<LinuxCpu> parse_cpu(const json& o, const std::string& w) {
  LinuxCpu c;
  TRY(get(o, "shares", w, c.shares));
  TRY(get(o, "quota", w, c.quota));
  TRY(get(o, "burst", w, c.burst));
  TRY(get(o, "period", w, c.period));
  TRY(get(o, "realtimeRuntime", w, c.realtime_runtime));
  TRY(get(o, "realtimePeriod", w, c.realtime_period));
  TRY(get(o, "cpus", w, c.cpus));
  TRY(get(o, "mems", w, c.mems));
  TRY(get(o, "idle", w, c.idle));
  return c;
}

Result<LinuxThrottleDevice> parse_throttle(const json& o, const std::string& w) {
  TRY(require_object(o, w));
  LinuxThrottleDevice d;
  TRY(get_required(o, "major", w, d.major));
  TRY(get_required(o, "minor", w, d.minor));
  TRY(get_required(o, "rate", w, d.rate));
  return d;
}

Result<std::vector<LinuxThrottleDevice>> parse_throttles(const json& o, const char* key, const std::string& w) {
  const json* arr = TRY(get_array(o, key, w));
  std::vector<LinuxThrottleDevice> out;
  for (size_t i = 0; i < arr->size(); ++i)
    out.push_back(TRY(parse_throttle((*arr)[i], cat(w, ".", key, "[", i, "]"))));
  return out;
}

Result<LinuxBlockIo> parse_block_io(const json& o, const std::string& w) {
  LinuxBlockIo b;
  TRY(get(o, "weight", w, b.weight));
  TRY(get(o, "leafWeight", w, b.leaf_weight));
  const json* wd = TRY(get_array(o, "weightDevice", w));
  for (size_t i = 0; i < wd->size(); ++i) {
    std::string wi = cat(w, ".weightDevice[", i, "]");
    const json& e = (*wd)[i];
    TRY(require_object(e, wi));
    LinuxWeightDevice d;
    TRY(get_required(e, "major", wi, d.major));
    TRY(get_required(e, "minor", wi, d.minor));
    TRY(get(e, "weight", wi, d.weight));
    TRY(get(e, "leafWeight", wi, d.leaf_weight));
    b.weight_device.push_back(d);
  }
  b.throttle_read_bps_device = TRY(parse_throttles(o, "throttleReadBpsDevice", w));
  b.throttle_write_bps_device = TRY(parse_throttles(o, "throttleWriteBpsDevice", w));
  b.throttle_read_iops_device = TRY(parse_throttles(o, "throttleReadIOPSDevice", w));
  b.throttle_write_iops_device = TRY(parse_throttles(o, "throttleWriteIOPSDevice", w));
  return b;
}

Result<LinuxNetwork> parse_network(const json& o, const std::string& w) {
  LinuxNetwork n;
  TRY(get(o, "classID", w, n.class_id));
  const json* pr = TRY(get_array(o, "priorities", w));
  for (size_t i = 0; i < pr->size(); ++i) {
    std::string wi = cat(w, ".priorities[", i, "]");
    const json& e = (*pr)[i];
    TRY(require_object(e, wi));
    LinuxInterfacePriority p;
    TRY(get_required(e, "name", wi, p.name));
    TRY(get_required(e, "priority", wi, p.priority));
    n.priorities.push_back(p);
  }
  return n;
}

}  // namespace

Result<LinuxResources> parse_resources(const json& j, const std::string& where) {
  TRY(require_object(j, where));
  LinuxResources r;

  const json* devices = TRY(get_array(j, "devices", where));
  for (size_t i = 0; i < devices->size(); ++i)
    r.devices.push_back(TRY(parse_device_rule((*devices)[i], cat(where, ".devices[", i, "]"))));

  if (const json* o = TRY(get_object(j, "memory", where))) r.memory = TRY(parse_memory(*o, where + ".memory"));
  if (const json* o = TRY(get_object(j, "cpu", where))) r.cpu = TRY(parse_cpu(*o, where + ".cpu"));
  if (const json* o = TRY(get_object(j, "pids", where))) {
    LinuxPids p;
    TRY(get(*o, "limit", where + ".pids", p.limit));
    r.pids = p;
  }
  if (const json* o = TRY(get_object(j, "blockIO", where))) r.block_io = TRY(parse_block_io(*o, where + ".blockIO"));

  const json* huge = TRY(get_array(j, "hugepageLimits", where));
  for (size_t i = 0; i < huge->size(); ++i) {
    std::string wi = cat(where, ".hugepageLimits[", i, "]");
    const json& e = (*huge)[i];
    TRY(require_object(e, wi));
    LinuxHugepageLimit h;
    TRY(get_required(e, "pageSize", wi, h.page_size));
    TRY(get_required(e, "limit", wi, h.limit));
    r.hugepage_limits.push_back(h);
  }

  if (const json* o = TRY(get_object(j, "network", where))) r.network = TRY(parse_network(*o, where + ".network"));

  if (const json* o = TRY(get_object(j, "rdma", where))) {
    for (const auto& [name, v] : o->items()) {
      std::string wi = cat(where, ".rdma.", name);
      TRY(require_object(v, wi));
      LinuxRdma rd;
      TRY(get(v, "hcaHandles", wi, rd.hca_handles));
      TRY(get(v, "hcaObjects", wi, rd.hca_objects));
      r.rdma[name] = rd;
    }
  }

  if (const json* o = TRY(get_object(j, "unified", where))) {
    for (const auto& [key, v] : o->items()) {
      if (!v.is_string()) return Error::invalid(cat(where, ".unified.", key, ": expected a string"));
      r.unified[key] = v.get<std::string>();
    }
  }
  clear_unset_zeros(r);
  return r;
}

namespace {

template <class T>
void clear_zero(std::optional<T>& v) {
  if (v && *v == T{}) v.reset();
}

}  // namespace

void clear_unset_zeros(LinuxResources& r) {
  if (r.memory) {
    auto& m = *r.memory;
    clear_zero(m.limit);
    clear_zero(m.reservation);
    clear_zero(m.swap);
    clear_zero(m.kernel);
    clear_zero(m.kernel_tcp);
  }
  if (r.cpu) {
    auto& c = *r.cpu;
    clear_zero(c.shares);
    clear_zero(c.quota);
    clear_zero(c.period);
    clear_zero(c.realtime_runtime);
    clear_zero(c.realtime_period);
    if (c.cpus && c.cpus->empty()) c.cpus.reset();
    if (c.mems && c.mems->empty()) c.mems.reset();
  }
  if (r.pids) clear_zero(r.pids->limit);
  if (r.block_io) {
    auto& b = *r.block_io;
    clear_zero(b.weight);
    clear_zero(b.leaf_weight);
    for (auto& d : b.weight_device) {
      clear_zero(d.weight);
      clear_zero(d.leaf_weight);
    }
  }
  if (r.network) clear_zero(r.network->class_id);
}

namespace {

template <class T>
void put(json& o, const char* key, const std::optional<T>& v) {
  if (v) o[key] = *v;
}

json throttles_json(const std::vector<LinuxThrottleDevice>& v) {
  json a = json::array();
  for (const auto& d : v) a.push_back({{"major", d.major}, {"minor", d.minor}, {"rate", d.rate}});
  return a;
}

}  // namespace

json to_json(const LinuxResources& r) {
  json j = json::object();
  if (!r.devices.empty()) {
    json a = json::array();
    for (const auto& d : r.devices) {
      json o = {{"allow", d.allow}};
      put(o, "type", d.type);
      put(o, "major", d.major);
      put(o, "minor", d.minor);
      put(o, "access", d.access);
      a.push_back(std::move(o));
    }
    j["devices"] = std::move(a);
  }
  if (r.memory) {
    const auto& m = *r.memory;
    json o = json::object();
    put(o, "limit", m.limit);
    put(o, "reservation", m.reservation);
    put(o, "swap", m.swap);
    put(o, "kernel", m.kernel);
    put(o, "kernelTCP", m.kernel_tcp);
    put(o, "swappiness", m.swappiness);
    put(o, "disableOOMKiller", m.disable_oom_killer);
    put(o, "useHierarchy", m.use_hierarchy);
    put(o, "checkBeforeUpdate", m.check_before_update);
    j["memory"] = std::move(o);
  }
  if (r.cpu) {
    const auto& c = *r.cpu;
    json o = json::object();
    put(o, "shares", c.shares);
    put(o, "quota", c.quota);
    put(o, "burst", c.burst);
    put(o, "period", c.period);
    put(o, "realtimeRuntime", c.realtime_runtime);
    put(o, "realtimePeriod", c.realtime_period);
    put(o, "cpus", c.cpus);
    put(o, "mems", c.mems);
    put(o, "idle", c.idle);
    j["cpu"] = std::move(o);
  }
  if (r.pids) {
    json o = json::object();
    put(o, "limit", r.pids->limit);
    j["pids"] = std::move(o);
  }
  if (r.block_io) {
    const auto& b = *r.block_io;
    json o = json::object();
    put(o, "weight", b.weight);
    put(o, "leafWeight", b.leaf_weight);
    if (!b.weight_device.empty()) {
      json a = json::array();
      for (const auto& d : b.weight_device) {
        json e = {{"major", d.major}, {"minor", d.minor}};
        put(e, "weight", d.weight);
        put(e, "leafWeight", d.leaf_weight);
        a.push_back(std::move(e));
      }
      o["weightDevice"] = std::move(a);
    }
    if (!b.throttle_read_bps_device.empty()) o["throttleReadBpsDevice"] = throttles_json(b.throttle_read_bps_device);
    if (!b.throttle_write_bps_device.empty()) o["throttleWriteBpsDevice"] = throttles_json(b.throttle_write_bps_device);
    if (!b.throttle_read_iops_device.empty()) o["throttleReadIOPSDevice"] = throttles_json(b.throttle_read_iops_device);
    if (!b.throttle_write_iops_device.empty())
      o["throttleWriteIOPSDevice"] = throttles_json(b.throttle_write_iops_device);
    j["blockIO"] = std::move(o);
  }
  if (!r.hugepage_limits.empty()) {
    json a = json::array();
    for (const auto& h : r.hugepage_limits) a.push_back({{"pageSize", h.page_size}, {"limit", h.limit}});
    j["hugepageLimits"] = std::move(a);
  }
  if (r.network) {
    json o = json::object();
    put(o, "classID", r.network->class_id);
    if (!r.network->priorities.empty()) {
      json a = json::array();
      for (const auto& p : r.network->priorities) a.push_back({{"name", p.name}, {"priority", p.priority}});
      o["priorities"] = std::move(a);
    }
    j["network"] = std::move(o);
  }
  if (!r.rdma.empty()) {
    json o = json::object();
    for (const auto& [name, rd] : r.rdma) {
      json e = json::object();
      put(e, "hcaHandles", rd.hca_handles);
      put(e, "hcaObjects", rd.hca_objects);
      o[name] = std::move(e);
    }
    j["rdma"] = std::move(o);
  }
  if (!r.unified.empty()) j["unified"] = r.unified;
  return j;
}

}  // namespace vessel::oci
