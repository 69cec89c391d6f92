#include "common/crash_point.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace vessel {
namespace {

struct CrashConfig {
  bool active = false;       // any crash-injection variable set
  bool kills = false;        // VESSEL_CRASH_AT set
  std::string name;         // empty: count every point
  unsigned long target = 1;  // which hit dies (1-based)
  std::string trace;         // file to append reached points to
  unsigned long hits = 0;
};

CrashConfig load() {
  CrashConfig c;
  const char* at = std::getenv("VESSEL_CRASH_AT");
  const char* trace = std::getenv("VESSEL_CRASH_TRACE");
  if (trace != nullptr && *trace != '\0') {
    c.trace = trace;
    c.active = true;
  }
  if (at == nullptr || *at == '\0') return c;
  std::string spec = at;
  c.active = true;
  c.kills = true;
  char* end = nullptr;
  unsigned long n = std::strtoul(spec.c_str(), &end, 10);
  if (*end == '\0' && n > 0) {
    c.target = n;
    return c;
  }
  auto hash = spec.rfind('#');
  if (hash != std::string::npos) {
    unsigned long k = std::strtoul(spec.c_str() + hash + 1, &end, 10);
    if (*end == '\0' && k > 0) {
      c.target = k;
      spec.resize(hash);
    }
  }
  c.name = spec;
  return c;
}

}  // namespace

void crash_point(std::string_view name) {
  static CrashConfig config = load();
  if (!config.active) return;
  if (!config.trace.empty()) {
    int fd = ::open(config.trace.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
      std::string line(name);
      line += '\n';
      (void)!::write(fd, line.data(), line.size());
      ::close(fd);
    }
  }
  if (!config.kills) return;
  if (!config.name.empty() && config.name != name) return;
  if (++config.hits != config.target) return;
  ::kill(::getpid(), SIGKILL);
  ::pause();  // SIGKILL cannot be blocked: never reached
}

}  // namespace vessel
