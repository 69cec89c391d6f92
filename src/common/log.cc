#include "common/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "common/clock.h"
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
int output_fd() { return g_fd; }

void write(Level level, std::string_view component, std::string_view message) {
  if (!enabled(level)) return;
  std::string line;
  if (g_format == Format::kJson) {
    line = cat("{\"level\":\"", level_name(level), "\",\"msg\":", json_quote(cat(component, ": ", message)),
               ",\"time\":\"", rfc3339_now(), "\"}\n");
  } else {
    // runc's (logrus') text form: time="..." level=debug msg="..."; the JSON form above
    // has logrus' keys in its order: level, msg, time.
    line = cat("time=\"", rfc3339_now(), "\" level=", level_name(level), " msg=", json_quote(cat(component, ": ", message)), "\n");
  }
  (void)!::write(g_fd, line.data(), line.size());
}

}  // namespace vessel::log
