#include "common/process.h"

#include <fcntl.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/strings.h"

namespace vessel {

uint64_t pid_start_time(pid_t pid) {
  auto fd = open_file(cat("/proc/", pid, "/stat"), O_RDONLY);
  if (!fd) return 0;
  auto text = read_fd_bounded(fd->get(), 4096);
  if (!text) return 0;
  // Fields after the command name, which is in parentheses and may contain spaces.
  size_t close = text->rfind(')');
  if (close == std::string::npos || close + 2 > text->size()) return 0;
  auto fields = split(std::string_view(*text).substr(close + 2), ' ');
  if (fields.size() < 20 || fields[0] == "Z" || fields[0] == "X") return 0;
  return parse_u64(fields[19]).value_or(0);
}

std::string self_owner_tag() { return cat(::getpid(), ".", pid_start_time(::getpid())); }

bool owner_alive(std::string_view tag) {
  auto dot = tag.find('.');
  if (dot == std::string_view::npos) return false;
  auto pid = parse_u64(tag.substr(0, dot));
  auto start = parse_u64(tag.substr(dot + 1));
  if (!pid || !start || *pid == 0 || *pid > 4194304) return false;
  return pid_start_time(static_cast<pid_t>(*pid)) == *start;
}

}  // namespace vessel
