#include "common/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "common/strings.h"

namespace vessel::log {
namespace {
int g_fd = 2;
Format g_format = Format::kText;
Level g_level = Level::kWarn;

const char* level_name(Level l) {
  switch (l) {
    case Level::kError: return "error";
    case Level::kWarn: return "warning";
    case Level::kInfo: return "info";
    case Level::kDebug: return "debug";
  }
  return "info";
}

std::string timestamp() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec);
  return buf;
}
}  // namespace

void configure(const std::string& path, Format format, Level level) {
  g_format = format;
  g_level = level;
  if (!path.empty()) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) g_fd = fd;
  }
}

bool enabled(Level level) { return static_cast<int>(level) <= static_cast<int>(g_level); }
bool to_file() { return g_fd != 2; }

void write(Level level, std::string_view component, std::string_view message) {
  if (!enabled(level)) return;
  std::string line;
  if (g_format == Format::kJson) {
    line = cat("{\"level\":\"", level_name(level), "\",\"msg\":", json_quote(cat(component, ": ", message)),
               ",\"time\":\"", timestamp(), "\"}\n");
  } else {
    line = cat(timestamp(), " ", level_name(level), " ", component, ": ", message, "\n");
  }
  (void)!::write(g_fd, line.data(), line.size());
}

}  // namespace vessel::log
