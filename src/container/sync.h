// The parent/child handshake during create: typed messages over a
// SOCK_SEQPACKET socketpair. The child never prints; it reports errors here.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "common/error.h"
#include "common/unique_fd.h"

namespace vessel::container {

enum class SyncMsg : uint32_t {
  kGo = 1,        // parent -> child: ids mapped, cgroups joined; carry on
  kRunHooks,      // child -> parent: mounts done; run prestart/createRuntime hooks
  kHooksDone,     // parent -> child: hooks ran; payload is the state JSON for createContainer hooks
  kReady,         // child -> parent: set up, waiting on exec.fifo
  kError,         // child -> parent: payload is the error message; errno in the header
  kSeccompFd,     // child -> parent: the seccomp notify listener fd (SCM_RIGHTS)
  kMountSources,  // child -> parent: in its namespaces, before the mounts: open the bind sources
  kMountSourceFd, // parent -> child: one per bind mount, in config order: its source, O_PATH (SCM_RIGHTS)
};

struct SyncMessage {
  SyncMsg type;
  int32_t code = 0;
  std::string payload;
  UniqueFd fd;  // a descriptor that came with the message, if any
};

class SyncSocket {
 public:
  SyncSocket() = default;
  explicit SyncSocket(UniqueFd fd) : fd_(std::move(fd)) {}
  // A connected pair: first for the parent, second for the child.
  static Result<std::pair<SyncSocket, SyncSocket>> pair();

  Status send(SyncMsg type, const std::string& payload = "", int32_t code = 0);
  // Sends a message carrying a file descriptor.
  Status send_fd(SyncMsg type, int fd, const std::string& payload = "");
  Status send_error(const Error& e) { return send(SyncMsg::kError, e.message(), e.code()); }
  // Receives one message; the peer closing is an error ("child exited during setup").
  Result<SyncMessage> recv();
  // Receives and requires `type`; a kError message becomes that Error.
  Result<SyncMessage> expect(SyncMsg type);

  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

 private:
  UniqueFd fd_;
};

}  // namespace vessel::container
