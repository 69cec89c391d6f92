// RawTerminal: puts a tty in raw mode (so Ctrl-C reaches the guest as a
// byte) and restores it on destruction.
#pragma once

#include <termios.h>

namespace vessel::vmm {

class RawTerminal {
 public:
  // Does nothing when `fd` is not a tty.
  explicit RawTerminal(int fd);
  ~RawTerminal();
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  bool active_ = false;
  termios saved_{};
};

}  // namespace vessel::vmm
