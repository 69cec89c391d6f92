/* vm_api_probe: the timing helper of bench/vm_api_l1.sh, for hosts (the VM
 * harness's L1) that have no Python.
 *   vm_api_probe FIFO CMD [ARGS...]
 * Spawns CMD (stdin/stdout/stderr on /dev/null), opens FIFO for reading (the
 * guest's COM1, which CMD writes) and waits for its first byte; prints
 * "<microseconds from spawn to the first byte> <pid of CMD>" and exits. A
 * forked child keeps draining the FIFO until its writer closes it, so the
 * VMM never blocks or gets EPIPE on its console while it is measured and stopped. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

extern char** environ;

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: vm_api_probe FIFO CMD [ARGS...]\n");
    return 2;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  for (int fd = 0; fd < 3; ++fd) posix_spawn_file_actions_addopen(&fa, fd, "/dev/null", O_RDWR, 0);
  long long t0 = now_us();
  pid_t pid;
  if (posix_spawnp(&pid, argv[2], &fa, NULL, argv + 2, environ) != 0) {
    perror("posix_spawnp");
    return 1;
  }
  int fifo = open(argv[1], O_RDONLY);  /* blocks until the VMM opens it for writing */
  if (fifo < 0) {
    perror("open fifo");
    return 1;
  }
  char c;
  ssize_t n = read(fifo, &c, 1);
  long long t = now_us() - t0;
  if (n != 1) {
    fprintf(stderr, "no output from the guest\n");
    return 1;
  }
  printf("%lld %d\n", t, (int)pid);
  fflush(stdout);
  if (fork() == 0) {
    char buf[65536];
    setsid();
    close(1);
    while (read(fifo, buf, sizeof buf) > 0) {
    }
    _exit(0);
  }
  return 0;
}
