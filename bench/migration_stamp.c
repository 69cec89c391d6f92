/* Guest-observed downtime for bench/migration_l1.sh: follows two serial
 * logs (the source VM's and the destination's; the second may not exist
 * yet) and notes when each line appears, by CLOCK_MONOTONIC, polling every
 * millisecond. Once the destination has printed its first line it prints
 *   <ms from the source's last line before that to the destination's first>
 * and exits (1 with no number after TIMEOUT_S seconds). The gap includes the
 * guest's report interval (it prints a line every REPORT ms of guest time).
 *   migration_stamp SOURCE_LOG DEST_LOG TIMEOUT_S
 * Built statically by bench/migration_compare.sh, run in the harness L1. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Reads what is new in fd; returns 1 if a newline came (a whole line). */
static int newline_came(int fd) {
  char buf[4096];
  int got = 0;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0)
    for (ssize_t i = 0; i < n; ++i)
      if (buf[i] == '\n') got = 1;
  return got;
}

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: migration_stamp SOURCE_LOG DEST_LOG TIMEOUT_S\n");
    return 2;
  }
  double deadline = now_ms() + atof(argv[3]) * 1e3;
  int src = open(argv[1], O_RDONLY | O_CLOEXEC), dst = -1;
  if (src < 0) {
    perror(argv[1]);
    return 2;
  }
  double last_src = -1;
  while (now_ms() < deadline) {
    if (newline_came(src)) last_src = now_ms();
    if (dst < 0) dst = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (dst >= 0 && newline_came(dst)) {
      double t = now_ms();
      if (last_src < 0) return 1;
      printf("%.1f\n", t - last_src);
      return 0;
    }
    struct timespec d = {0, 1000000};
    nanosleep(&d, NULL);
  }
  return 1;
}
