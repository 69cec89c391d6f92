#include "vmm/devices/bus.h"

#include <algorithm>
#include <cstring>

#include "common/strings.h"
#include "vmm/hex.h"

namespace vessel::vmm {

Status Bus::insert(BusDevice* dev, uint64_t base, uint64_t len, std::string name) {
  if (len == 0 || base + len < base) return Error::invalid(cat("bus range of ", name, " is empty or wraps"));
  auto it = std::lower_bound(entries_.begin(), entries_.end(), base,
                             [](const Entry& e, uint64_t b) { return e.base < b; });
  if (it != entries_.end() && it->base < base + len)
    return Error::invalid(cat(name, " at ", hex(base), " overlaps ", it->name, " at ", hex(it->base)));
  if (it != entries_.begin()) {
    auto prev = std::prev(it);
    if (prev->base + prev->len > base)
      return Error::invalid(cat(name, " at ", hex(base), " overlaps ", prev->name, " at ", hex(prev->base)));
  }
  entries_.insert(it, Entry{base, len, dev, std::move(name)});
  return ok();
}

const Bus::Entry* Bus::find(uint64_t addr, uint64_t len) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), addr,
                             [](uint64_t a, const Entry& e) { return a < e.base; });
  if (it == entries_.begin()) return nullptr;
  const Entry& e = *std::prev(it);
  uint64_t off = addr - e.base;
  if (off >= e.len || len > e.len - off) return nullptr;
  return &e;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  const Entry* e = find(addr, data.size());
  if (!e) {
    std::memset(data.data(), 0xff, data.size());
    return false;
  }
  e->dev->read(addr - e->base, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  const Entry* e = find(addr, data.size());
  if (!e) return false;
  e->dev->write(addr - e->base, data);
  return true;
}

}  // namespace vessel::vmm
