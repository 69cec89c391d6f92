// Logging: component-tagged lines, text or JSON (runc's --log/--log-format,
// which containerd and podman read). Errors also go to stderr.
#pragma once

#include <string>
#include <string_view>

namespace vessel::log {

enum class Level { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };
enum class Format { kText, kJson };

// Sets where log lines go (empty path: stderr) and their format and level.
void configure(const std::string& path, Format format, Level level);
bool enabled(Level level);
void write(Level level, std::string_view component, std::string_view message);

inline void error(std::string_view c, std::string_view m) { write(Level::kError, c, m); }
inline void warn(std::string_view c, std::string_view m) { write(Level::kWarn, c, m); }
inline void info(std::string_view c, std::string_view m) { if (enabled(Level::kInfo)) write(Level::kInfo, c, m); }
inline void debug(std::string_view c, std::string_view m) { if (enabled(Level::kDebug)) write(Level::kDebug, c, m); }

// True when log lines go to a file other than stderr (then errors are printed to stderr too).
bool to_file();
// The fd log lines go to (2, or the --log file's).
int output_fd();

}  // namespace vessel::log
