#include "image/progress.h"

#include <unistd.h>

#include <cstdio>

namespace vessel::image {

Progress::Progress(bool force) : enabled_(force || ::isatty(STDERR_FILENO) == 1) {}

void Progress::line(const std::string& s) {
  if (!enabled_) return;
  if (open_status_) std::fputs("\r\033[K", stderr);
  open_status_ = false;
  std::fprintf(stderr, "%s\n", s.c_str());
}

void Progress::status(const std::string& s) {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K%s", s.c_str());
  std::fflush(stderr);
  open_status_ = true;
}

void Progress::done() {
  if (!enabled_ || !open_status_) return;
  std::fputc('\n', stderr);
  open_status_ = false;
}

std::string human_size(long long bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%lld B", bytes);
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace vessel::image
