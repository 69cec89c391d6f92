// Where a migration stream flows: "tcp:ADDR:PORT" (IPv4 or a bracketed IPv6
// address) or "unix:PATH", and a connection that reads and writes whole
// frames (protocol.h) with a timeout, passing a file descriptor along on a
// unix socket (SCM_RIGHTS).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/migration/protocol.h"

namespace vessel::vmm::migration {

struct Endpoint {
  enum class Kind { kTcp, kUnix } kind = Kind::kTcp;
  std::string host;  // tcp: address (numeric)
  uint16_t port = 0;
  std::string path;  // unix
  std::string text;  // as given
};
// Parses "tcp:ADDR:PORT" or "unix:PATH"; `flag` names the option in errors.
Result<Endpoint> parse_endpoint(const std::string& s, const std::string& flag);

// The send buffer a unix-socket sender asks for (SO_SNDBUFFORCE where it may,
// else up to the host's wmem_max): a unix stream queues no more than it,
// and the default (~208 KiB) made the sender wait on the receiver every
// ~50 pages. A TCP sender keeps the kernel's buffer autotuning (asking for a
// size turns it off). What is queued when the source decides to stop is read
// with SIOCOUTQ (Connection::queued), counted in the downtime estimate and
// drained first, so a large buffer does not lengthen the pause.
inline constexpr int kSocketBuffer = 4 << 20;
// The receive buffer of a TCP receiver (the kernel doubles it, up to the
// host's rmem_max): bytes TCP acknowledged that the receiver has not processed
// yet are invisible to the sender's SIOCOUTQ; this keeps them to a few dozen
// pages when the source pauses.
inline constexpr int kReceiveBuffer = 256 << 10;

// Binds and listens (a unix path that is a stale socket is replaced; one a
// process listens on is refused).
Result<UniqueFd> listen_endpoint(const Endpoint& e);
// Waits up to `timeout_ms` (-1: forever) for one connection; `cancel_fd`
// (if >= 0) readable ends the wait with ECANCELED.
Result<UniqueFd> accept_one(int listen_fd, int timeout_ms, int cancel_fd = -1);
// Connects, waiting up to `timeout_ms`.
Result<UniqueFd> connect_endpoint(const Endpoint& e, int timeout_ms);

// One frame as read.
struct Frame {
  FrameHeader header{};
  // The payload: exactly header.length bytes from receive(); from
  // receive_into() possibly longer (a buffer reused from frame to frame):
  // body() is the payload either way.
  std::vector<uint8_t> payload;
  UniqueFd fd;  // came with it (unix sockets)
  std::span<const uint8_t> body() const { return {payload.data(), header.length}; }
};

// A connected stream socket speaking frames.
class Connection {
 public:
  explicit Connection(UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }
  // Sends one frame (with `pass_fd` attached when >= 0). Waits at most
  // `timeout_ms` for the peer to take each part.
  Status send(FrameType type, std::span<const uint8_t> payload, int pass_fd = -1);
  Status send_raw(std::span<const uint8_t> bytes, int pass_fd = -1);
  // Reads one whole frame, checking header bound and CRC.
  Result<Frame> receive(int timeout_ms);
  // The same into `f`, whose payload buffer is kept and grown as needed (no
  // allocation or zeroing per frame); its fd is reset.
  Status receive_into(Frame& f, int timeout_ms);
  // Whether bytes (or the peer's close) wait to be read, within `timeout_ms`.
  Result<bool> readable(int timeout_ms);
  // Bytes written so far.
  uint64_t bytes_sent() const { return sent_; }
  // At most this many bytes written here may still wait for the peer to read
  // them: this socket's send buffer and, as large, the peer's receive buffer.
  uint64_t in_flight_bound() const;
  // Bytes written here that the peer has not taken yet (SIOCOUTQ: on TCP
  // not yet acknowledged, on a unix socket not yet read); in_flight_bound()
  // where the kernel does not say.
  uint64_t queued() const;
  // Waits up to `max_ms` until nothing written here is queued; whether it is so.
  bool drain(int max_ms) const;
  void set_timeout_ms(int t) { timeout_ms_ = t; }

 private:
  Status read_exact(std::span<uint8_t> out, int timeout_ms, UniqueFd* fd_out);
  // Fills `a` then `b` (one recvmsg for both where the bytes are there).
  Status read_exact2(std::span<uint8_t> a, std::span<uint8_t> b, int timeout_ms, UniqueFd* fd_out);
  UniqueFd fd_;
  uint64_t sent_ = 0;
  int timeout_ms_ = 30000;
};

}  // namespace vessel::vmm::migration
