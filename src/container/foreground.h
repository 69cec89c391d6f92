// Supervising a process in the foreground (run, exec): every signal we may
// receive is forwarded to it, a terminal is relayed, and we return its status.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include "common/error.h"

namespace vessel::container {

class SignalForwarder {
 public:
  // Blocks the forwardable signals so none is lost before wait() runs; a
  // subreaper so that the process is ours to reap even after a double fork.
  SignalForwarder();
  ~SignalForwarder();
  SignalForwarder(const SignalForwarder&) = delete;
  SignalForwarder& operator=(const SignalForwarder&) = delete;

  // Waits for `pid`, forwarding signals and, with a pty master (`master` >= 0),
  // relaying stdin/stdout and window size. Returns its exit status (128+signal if killed).
  // `pid` is SIGKILLed (and still waited for) on a second SIGTERM/SIGINT (the first is
  // forwarded, and a PID 1 without a handler ignores it) and when the relayed output is
  // gone (the reader of our stdout exited): otherwise its writes to the pty would block
  // for ever.
  Result<int> wait(pid_t pid, int master);

 private:
  sigset_t forwarded_;
  sigset_t old_;
};

}  // namespace vessel::container
