/* Timing helper for bench/snapshot_l1.sh (busybox in L1 has no sub-second
 * clock). Built statically by bench/snapshot_compare.sh.
 *   snapshot_timer now                     monotonic clock in microseconds
 *   snapshot_timer run FILE CMD [ARGS...]  runs CMD and waits for it; then
 *       waits (up to 60 s) until FILE is non-empty; prints
 *       "<ms until CMD exited> <ms until FILE had a byte> <CMD status>"
 *   snapshot_timer spawn FILE CMD [ARGS...]  the same without waiting for
 *       CMD (left running, its output to /dev/null: its pid is the third number)
 *   snapshot_timer passes FILE   follows FILE (the serial log of a restored
 *       make_tiny_pvh.py touchN guest) for up to 300 s: prints
 *       "<ms from the first 'T' to the next 'D'> <ms of the pass after it>",
 *       the first full pass over guest RAM after the restore (first touch)
 *       and a warm one; -1 for a pass not seen
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

/* The "passes" mode: each 'T' .. 'D' pair of FILE, timed as the bytes appear. */
static int passes(const char* file) {
  double t0 = now_us(), started = -1, pass[2] = {-1, -1};
  int n = 0, fd = -1;
  off_t at = 0;
  while (n < 2 && now_us() - t0 < 300e6) {
    if (fd < 0) fd = open(file, O_RDONLY);
    char buf[4096];
    ssize_t got = fd < 0 ? 0 : pread(fd, buf, sizeof buf, at);
    if (got <= 0) {
      usleep(100);
      continue;
    }
    at += got;
    double t = now_us();
    for (ssize_t i = 0; i < got && n < 2; ++i) {
      if (buf[i] == 'T') started = t;
      else if (buf[i] == 'D' && started >= 0) {
        pass[n++] = (t - started) / 1000;
        started = -1;
      }
    }
  }
  printf("%.2f %.2f\n", pass[0], pass[1]);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "now") == 0) {
    printf("%.0f\n", now_us());
    return 0;
  }
  if (argc == 3 && strcmp(argv[1], "passes") == 0) return passes(argv[2]);
  if (argc < 4 || (strcmp(argv[1], "run") != 0 && strcmp(argv[1], "spawn") != 0)) {
    fprintf(stderr, "usage: snapshot_timer now | run|spawn FILE CMD [ARGS...]\n");
    return 2;
  }
  int wait_cmd = strcmp(argv[1], "run") == 0;
  const char* file = argv[2];
  double t0 = now_us();
  pid_t pid = fork();
  if (pid < 0) return perror("fork"), 1;
  if (pid == 0) {
    if (!wait_cmd) {  /* left running: it must not hold the caller's $(...) pipe open */
      int null = open("/dev/null", O_RDWR);
      dup2(null, 1);
      dup2(null, 2);
    }
    execvp(argv[3], argv + 3);
    perror(argv[3]);
    _exit(127);
  }
  double cmd_ms = -1;
  int status = 0;
  if (wait_cmd) {
    waitpid(pid, &status, 0);
    cmd_ms = (now_us() - t0) / 1000;
    status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  double byte_ms = -1;
  struct stat st;
  while (now_us() - t0 < 60e6) {
    if (stat(file, &st) == 0 && st.st_size > 0) {
      byte_ms = (now_us() - t0) / 1000;
      break;
    }
    usleep(100);
  }
  printf("%.2f %.2f %d\n", cmd_ms, byte_ms, wait_cmd ? status : (int)pid);
  return 0;
}
