#include "vmm/arch/x86_64/aml.h"

namespace vessel::vmm::x86::aml {

namespace {
constexpr uint8_t kZeroOp = 0x00, kOneOp = 0x01, kNameOp = 0x08, kBytePrefix = 0x0a, kWordPrefix = 0x0b,
                  kDWordPrefix = 0x0c, kStringPrefix = 0x0d, kQWordPrefix = 0x0e, kScopeOp = 0x10,
                  kBufferOp = 0x11, kPackageOp = 0x12, kExtOpPrefix = 0x5b, kDeviceOp = 0x82,
                  kRootChar = 0x5c, kDualNamePrefix = 0x2e, kMultiNamePrefix = 0x2f, kMethodOp = 0x14,
                  kStoreOp = 0x70, kOpRegionOp = 0x80, kFieldOp = 0x81, kArg0Op = 0x68, kReturnOp = 0xa4,
                  kIfOp = 0xa0, kLEqualOp = 0x93, kNotifyOp = 0x86;

void append(Bytes& out, const Bytes& b) { out.insert(out.end(), b.begin(), b.end()); }

void append_le(Bytes& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// op [ext] PkgLength body
Bytes with_pkg(std::initializer_list<uint8_t> ops, const Bytes& body) {
  Bytes out(ops);
  append(out, pkg_length(body.size()));
  append(out, body);
  return out;
}
}  // namespace

Bytes pkg_length(size_t n) {
  if (n + 1 < 0x40) return {static_cast<uint8_t>(n + 1)};
  size_t total = n + 2;
  if (total < 0x1000) return {static_cast<uint8_t>(0x40 | (total & 0xf)), static_cast<uint8_t>(total >> 4)};
  total = n + 3;
  if (total < 0x100000)
    return {static_cast<uint8_t>(0x80 | (total & 0xf)), static_cast<uint8_t>(total >> 4), static_cast<uint8_t>(total >> 12)};
  total = n + 4;
  return {static_cast<uint8_t>(0xc0 | (total & 0xf)), static_cast<uint8_t>(total >> 4),
          static_cast<uint8_t>(total >> 12), static_cast<uint8_t>(total >> 20)};
}

Bytes name_string(std::string_view path) {
  Bytes out;
  if (!path.empty() && path[0] == '\\') {
    out.push_back(kRootChar);
    path.remove_prefix(1);
  }
  std::vector<std::string_view> segs;
  while (!path.empty()) {
    size_t dot = path.find('.');
    segs.push_back(path.substr(0, dot));
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  if (segs.size() == 2) out.push_back(kDualNamePrefix);
  if (segs.size() > 2) {
    out.push_back(kMultiNamePrefix);
    out.push_back(static_cast<uint8_t>(segs.size()));
  }
  for (auto s : segs)
    for (size_t i = 0; i < 4; ++i) out.push_back(i < s.size() ? static_cast<uint8_t>(s[i]) : '_');
  return out;
}

Bytes integer(uint64_t v) {
  if (v == 0) return {kZeroOp};
  if (v == 1) return {kOneOp};
  Bytes out;
  if (v <= 0xff) {
    out.push_back(kBytePrefix);
    append_le(out, v, 1);
  } else if (v <= 0xffff) {
    out.push_back(kWordPrefix);
    append_le(out, v, 2);
  } else if (v <= 0xffffffff) {
    out.push_back(kDWordPrefix);
    append_le(out, v, 4);
  } else {
    out.push_back(kQWordPrefix);
    append_le(out, v, 8);
  }
  return out;
}

Bytes string(std::string_view s) {
  Bytes out;
  out.reserve(s.size() + 2);
  out.push_back(kStringPrefix);
  for (char c : s) out.push_back(static_cast<uint8_t>(c));  // (insert() trips a g++ 12 -Warray-bounds false positive)
  out.push_back(0);
  return out;
}

Bytes eisa_id(std::string_view id) {
  auto hexval = [](char c) -> uint32_t {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0;
  };
  uint32_t v = 0;
  if (id.size() == 7) {
    v = ((uint32_t(id[0] - 0x40) & 0x1f) << 26) | ((uint32_t(id[1] - 0x40) & 0x1f) << 21) |
        ((uint32_t(id[2] - 0x40) & 0x1f) << 16) | (hexval(id[3]) << 12) | (hexval(id[4]) << 8) |
        (hexval(id[5]) << 4) | hexval(id[6]);
  }
  Bytes out{kDWordPrefix};
  append_le(out, __builtin_bswap32(v), 4);
  return out;
}

Bytes name(std::string_view path, const Bytes& value) {
  Bytes out{kNameOp};
  append(out, name_string(path));
  append(out, value);
  return out;
}

Bytes package(const std::vector<Bytes>& elements) {
  Bytes body{static_cast<uint8_t>(elements.size())};
  for (const auto& e : elements) append(body, e);
  return with_pkg({kPackageOp}, body);
}

Bytes buffer(const Bytes& data) {
  Bytes body = integer(data.size());
  append(body, data);
  return with_pkg({kBufferOp}, body);
}

Bytes scope(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = name_string(path);
  for (const auto& t : terms) append(body, t);
  return with_pkg({kScopeOp}, body);
}

Bytes device(std::string_view path, const std::vector<Bytes>& terms) {
  Bytes body = name_string(path);
  for (const auto& t : terms) append(body, t);
  return with_pkg({kExtOpPrefix, kDeviceOp}, body);
}

Bytes io_port(uint16_t base, uint8_t len) {
  // I/O port descriptor (small, 7 bytes): decodes 16 bits, min == max.
  return {0x47, 0x01, static_cast<uint8_t>(base), static_cast<uint8_t>(base >> 8), static_cast<uint8_t>(base),
          static_cast<uint8_t>(base >> 8), 0x01, len};
}

Bytes irq_no_flags(uint8_t irq) {
  uint16_t mask = static_cast<uint16_t>(1u << (irq & 15));
  return {0x22, static_cast<uint8_t>(mask), static_cast<uint8_t>(mask >> 8)};
}

Bytes memory32_fixed(bool writable, uint32_t base, uint32_t len) {
  Bytes out{0x86, 9, 0, static_cast<uint8_t>(writable ? 1 : 0)};
  append_le(out, base, 4);
  append_le(out, len, 4);
  return out;
}

Bytes interrupt(bool edge, bool active_low, bool shared, uint32_t irq) {
  uint8_t flags = 0x01 | (edge ? 0x02 : 0) | (active_low ? 0x04 : 0) | (shared ? 0x08 : 0);  // bit 0: consumer
  Bytes out{0x89, 6, 0, flags, 1};
  append_le(out, irq, 4);
  return out;
}

Bytes resource_template(const std::vector<Bytes>& descriptors) {
  Bytes data;
  for (const auto& d : descriptors) append(data, d);
  data.push_back(0x79);  // end tag
  data.push_back(0);     // checksum 0: "treat as correct"
  return buffer(data);
}

Bytes method(std::string_view path, uint8_t nargs, bool serialized, const std::vector<Bytes>& terms) {
  Bytes body = name_string(path);
  body.push_back(static_cast<uint8_t>((nargs & 7) | (serialized ? 0x08 : 0)));
  for (const auto& t : terms) append(body, t);
  return with_pkg({kMethodOp}, body);
}

Bytes arg(unsigned n) { return {static_cast<uint8_t>(kArg0Op + (n & 7))}; }

Bytes store(const Bytes& value, std::string_view target) {
  Bytes out{kStoreOp};
  append(out, value);
  append(out, name_string(target));
  return out;
}

Bytes io_region(std::string_view path, uint16_t port, uint8_t len) {
  Bytes out{kExtOpPrefix, kOpRegionOp};
  append(out, name_string(path));
  out.push_back(0x01);  // RegionSpace: SystemIO
  append(out, integer(port));
  append(out, integer(len));
  return out;
}

Bytes byte_fields(std::string_view region, const std::vector<std::string_view>& names) {
  Bytes body = name_string(region);
  body.push_back(0x01);  // ByteAcc, NoLock, Preserve
  for (auto n : names) {
    for (size_t i = 0; i < 4; ++i) body.push_back(i < n.size() ? static_cast<uint8_t>(n[i]) : '_');
    body.push_back(8);  // NamedField length in bits (a bare PkgLength value)
  }
  return with_pkg({kExtOpPrefix, kFieldOp}, body);
}

Bytes return_(const Bytes& value) {
  Bytes out{kReturnOp};
  append(out, value);
  return out;
}

Bytes if_(const Bytes& predicate, const std::vector<Bytes>& terms) {
  Bytes body = predicate;
  for (const auto& t : terms) append(body, t);
  return with_pkg({kIfOp}, body);
}

Bytes lequal(const Bytes& a, const Bytes& b) {
  Bytes out{kLEqualOp};
  append(out, a);
  append(out, b);
  return out;
}

Bytes notify(std::string_view object, const Bytes& value) {
  Bytes out{kNotifyOp};
  append(out, name_string(object));
  append(out, value);
  return out;
}

}  // namespace vessel::vmm::x86::aml
