#include "container/run.h"

#include <sys/socket.h>
#include <unistd.h>

#include <optional>

#include "common/strings.h"
#include "container/console.h"
#include "container/foreground.h"
#include "oci/spec.h"
#include "sys/syscalls.h"

namespace vessel::container {
Result<int> run(CreateOptions o, bool detach, bool keep) {
  bool terminal = false;
  if (auto spec = oci::load_spec(o.bundle.empty() ? "." : o.bundle); spec && spec->process)
    terminal = spec->process->terminal;
  UniqueFd console_ours, console_theirs;
  if (terminal && o.console_socket.empty()) {
    if (detach) return Error::invalid("process.terminal is true: --detach needs --console-socket");
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return Error::from_errno("socketpair");
    console_ours.reset(sv[0]);
    console_theirs.reset(sv[1]);
    o.console_fd = console_theirs.get();
  }

  std::optional<SignalForwarder> forwarder;
  if (!detach) forwarder.emplace();
  auto pid = create(o);
  if (!pid) return std::move(pid).error().context(cat("run ", o.id));
  console_theirs.reset();
  UniqueFd master;
  if (console_ours) {
    auto m = sys::recv_fd(console_ours.get());
    if (!m) {
      (void)remove(o.root, o.id, true);
      return std::move(m).error().context("receive the container's pty");
    }
    master = std::move(*m);
    clear_onlcr(master.get());
  }
  if (auto st = start(o.root, o.id); !st) {
    (void)remove(o.root, o.id, true);
    return std::move(st).error();
  }
  if (detach) return 0;

  auto status = forwarder->wait(*pid, master ? master.get() : -1);
  if (!keep) (void)remove(o.root, o.id, true);
  return status;
}

}  // namespace vessel::container
