// process.terminal: a pty allocated inside the container, its master sent to
// the --console-socket (as conmon and containerd expect), its slave made the
// process's stdio, controlling terminal and /dev/console.
#pragma once

#include <string>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::container {

// Connects to the unix socket at `path` (on the host, before entering the container).
Result<UniqueFd> connect_console_socket(const std::string& path);

// In the container after pivot_root: creates the pty, sends its master over `sock`.
Status setup_console(int sock, unsigned rows, unsigned cols, bool mount_console);

// Foreground `run` with a terminal: copies stdin to the pty master and the
// master to stdout (stdin in raw mode, restored after) until the master closes.
// Runs in a thread of its own; returns when the container's side is gone.
void relay_console(int master);

}  // namespace vessel::container
