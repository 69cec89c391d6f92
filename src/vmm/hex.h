// hex(): formats a number as "0x..." for VMM error messages and register dumps.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace vessel::vmm {

inline std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace vessel::vmm
