#include "vmm/console.h"

#include <unistd.h>

namespace vessel::vmm {

RawTerminal::RawTerminal(int fd) : fd_(fd) {
  if (!::isatty(fd) || ::tcgetattr(fd, &saved_) != 0) return;
  termios raw = saved_;
  ::cfmakeraw(&raw);
  if (::tcsetattr(fd, TCSANOW, &raw) == 0) active_ = true;
}

RawTerminal::~RawTerminal() {
  if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
}

}  // namespace vessel::vmm
