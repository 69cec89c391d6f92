// process.terminal: a pty allocated inside the container, its master sent to
// the --console-socket (as conmon and containerd expect), its slave made the
// process's stdio, controlling terminal and /dev/console.
#pragma once

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::container {

// Connects to the unix socket at `path` (on the host, before entering the container).
// `what` names it in errors: the flag, or the seccomp agent.
Result<UniqueFd> connect_console_socket(const std::string& path, const char* what = "--console-socket");

// In the container after pivot_root: creates the pty, sends its master over `sock`.
Status setup_console(int sock, unsigned rows, unsigned cols, bool mount_console);

// Why relay_console() returned.
enum class RelayEnd {
  kContainerClosed,  // the pty's last user closed it (EOF or EIO on the master)
  kStopped,          // `stop_fd` became readable (the process exited): output drained
  kOutputGone,       // writing to stdout failed (EPIPE: `| head -c 100`) or stdout hung up
};

// Foreground `run` with a terminal: copies stdin to the pty master and the
// master to stdout (stdin in raw mode, restored after). Runs in a thread of its
// own and never blocks on reading: it returns when the container's side is
// gone, when `stop_fd` (an eventfd, -1 for none) is readable, or when the
// output is gone. The caller kills the container on kOutputGone: a process
// writing to a pty no one reads would block for ever.
RelayEnd relay_console(int master, int stop_fd = -1);
// Output post-processing off on a pty vessel relays itself (run, exec -t without
// --console-socket): the process's "\n" reaches our stdout as "\n", not "\r\n", as runc
// does (ClearONLCR). Done as soon as the pty is ours, before the process starts.
void clear_onlcr(int master);

}  // namespace vessel::container
