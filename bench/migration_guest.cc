// Writes the migration bench's guest (tests/integration/vmm/migration/
// dirty_guest.h: a 512 MiB guest writing a counter into random pages,
// verifying their sum every 100 ms) as a PVH ELF that vessel and QEMU both
// boot with -kernel, paced to dirty MIB_PER_S MiB/s (0: idle) on this
// machine's TSC, which it calibrates against CLOCK_MONOTONIC over 200 ms.
// Built statically by bench/migration_compare.sh (-DVESSEL_BINARY for
// tiny_pvh.h), run in the harness L1.
//   migration_guest OUT.elf MIB_PER_S
#include <time.h>
#include <x86intrin.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "integration/vmm/migration/dirty_guest.h"
#include "integration/vmm/tiny_pvh.h"

namespace {
double now_s() {
  timespec t{};
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: migration_guest OUT.elf MIB_PER_S\n");
    return 2;
  }
  double rate = std::atof(argv[2]);
  double t0 = now_s();
  uint64_t c0 = __rdtsc();
  while (now_s() - t0 < 0.2) {
  }
  double khz = static_cast<double>(__rdtsc() - c0) / (now_s() - t0) / 1000.0;
  auto elf = vessel::vmm::testing::pvh_elf(vessel::vmm::testing::dirty_guest_at(rate, static_cast<uint32_t>(khz), 100));
  std::ofstream f(argv[1], std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(elf.data()), static_cast<std::streamsize>(elf.size()));
  if (!f) {
    std::fprintf(stderr, "migration_guest: cannot write %s\n", argv[1]);
    return 1;
  }
  std::printf("%.0f\n", khz);
  return 0;
}
