// `vessel vm console ID`: attach the terminal to COM1 of a detached VM
// (through <state dir>/console.sock). Ctrl-] detaches; the VM keeps running.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli/vm.h"
#include "common/fs.h"
#include "common/strings.h"
#include "common/unique_fd.h"
#include "vmm/console.h"
#include "vmm/instance/launch.h"

namespace vessel::cli {
namespace {

constexpr uint8_t kDetachKey = 0x1d;  // Ctrl-]

Result<UniqueFd> connect_console(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path) return Error::invalid(cat("console socket path '", path, "' is too long"));
  std::copy(path.begin(), path.end(), a.sun_path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::from_errno("socket");
  UniqueFd s(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0) return Error::from_errno(cat("connect to ", path));
  return s;
}

Status console(const Globals& g, const std::string& id) {
  auto h = TRY(vmm::find_vm(g.root, id));
  if (!h.alive) return Error::invalid(cat("VM '", id, "' is stopped (its output is in ", h.paths.serial_log(), ")"));
  UniqueFd sock = TRY(connect_console(h.paths.console_sock()));
  ::signal(SIGPIPE, SIG_IGN);  // the VMM closes the console when the VM stops: EPIPE, not death
  bool tty = ::isatty(STDIN_FILENO);
  if (tty) std::fprintf(stderr, "vessel: attached to VM %s; Ctrl-] detaches\r\n", id.c_str());
  vmm::RawTerminal raw(STDIN_FILENO);
  bool in_open = true;
  char buf[4096];
  for (;;) {
    pollfd fds[2] = {{sock.get(), POLLIN, 0}, {in_open ? STDIN_FILENO : -1, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return Error::from_errno("poll");
    }
    if (fds[0].revents) {
      ssize_t n = ::read(sock.get(), buf, sizeof buf);
      if (n <= 0) break;  // the VM stopped (or the VMM refused us: its message was printed)
      TRY(write_all(STDOUT_FILENO, std::string_view(buf, static_cast<size_t>(n))));
    }
    if (fds[1].fd >= 0 && fds[1].revents) {
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n <= 0) {
        in_open = false;  // keep printing the guest's output
        ::shutdown(sock.get(), SHUT_WR);
        continue;
      }
      std::string_view in(buf, static_cast<size_t>(n));
      size_t key = tty ? in.find(static_cast<char>(kDetachKey)) : std::string_view::npos;
      if (!write_all(sock.get(), in.substr(0, key))) break;  // the VMM closed the console
      if (key != std::string_view::npos) {
        if (tty) std::fprintf(stderr, "\r\nvessel: detached from VM %s\r\n", id.c_str());
        break;
      }
    }
  }
  return ok();
}

}  // namespace

void add_vm_console(CLI::App& vm, Globals& g) {
  auto id = std::make_shared<std::string>();
  auto* cmd = vm.add_subcommand("console",
                                "attach to COM1 of a detached VM (Ctrl-] detaches; output is also kept in "
                                "<root>/vm/<id>/serial.log)");
  cmd->add_option("id", *id, "VM id")->required();
  cmd->callback([id, &g] { finish(console(g, *id).context(cat("console ", *id))); });
}

}  // namespace vessel::cli
