// scrub: run in the VM harness's L1 before each measured boot (bench/vm_fullsystem.sh).
// Has L1's kernel take and zero nearly all its free memory once, then gives it back.
//
// Why: L1 runs under QEMU TCG. A page of L1's memory that held code the previous L2
// guest ran still has TCG translations of it, and TCG takes a slow path (invalidating
// translations) on every store to such a page until none is left: zeroing one 2 MiB
// page for a new guest took 13 s in a traced boot (a single nested page fault, during
// the kernel's decompression), where a clean one takes milliseconds. Which VMM's guest
// lands on such pages is chance, and it scattered the boots by tens of seconds. Zeroed
// here, outside the measurement, every boot starts from clean memory, as the first boot
// of an L1 does.
//
//   scrub [KEEP_MIB]   (default 64: what is left free)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static long meminfo_kib(const char* key) {
  FILE* f = fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  size_t n = strlen(key);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, key, n) == 0 && line[n] == ':') {
      v = strtol(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return v;
}

int main(int argc, char** argv) {
  long keep_mib = argc > 1 ? strtol(argv[1], NULL, 10) : 64;
  long free_kib = meminfo_kib("MemFree");
  if (free_kib < 0) {
    fprintf(stderr, "scrub: no MemFree in /proc/meminfo\n");
    return 1;
  }
  long mib = free_kib / 1024 - keep_mib;
  if (mib <= 0) {
    printf("scrub: %ld MiB free, nothing to do\n", free_kib / 1024);
    return 0;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  size_t len = (size_t)mib << 20;
  // MAP_POPULATE: the kernel allocates and zeroes every page at once.
  void* p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    perror("scrub: mmap");
    return 1;
  }
  munmap(p, len);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  printf("scrub: %ld MiB in %.1f s\n", mib, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
  return 0;
}
