#include "vmm/migration/transport.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "common/strings.h"

namespace vessel::vmm::migration {

namespace {
struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_UNIX;
};

Result<Addr> address(const Endpoint& e) {
  Addr a;
  if (e.kind == Endpoint::Kind::kUnix) {
    auto* un = reinterpret_cast<sockaddr_un*>(&a.ss);
    un->sun_family = AF_UNIX;
    if (e.path.size() >= sizeof un->sun_path) return Error::invalid(cat(e.text, ": unix socket path is too long"));
    std::memcpy(un->sun_path, e.path.c_str(), e.path.size() + 1);
    a.len = sizeof(sockaddr_un);
    return a;
  }
  auto* in4 = reinterpret_cast<sockaddr_in*>(&a.ss);
  if (::inet_pton(AF_INET, e.host.c_str(), &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons(e.port);
    a.len = sizeof(sockaddr_in);
    a.family = AF_INET;
    return a;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
  if (::inet_pton(AF_INET6, e.host.c_str(), &in6->sin6_addr) == 1) {
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(e.port);
    a.len = sizeof(sockaddr_in6);
    a.family = AF_INET6;
    return a;
  }
  return Error::invalid(cat(e.text, ": '", e.host, "' is not a numeric IPv4 or IPv6 address"));
}

Status wait_fd(int fd, short events, int timeout_ms, const char* what) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error::from_errno(what);
    if (r == 0) return Error(ETIMEDOUT, cat(what, ": timed out after ", timeout_ms, " ms"));
    return ok();
  }
}
}  // namespace

Result<Endpoint> parse_endpoint(const std::string& s, const std::string& flag) {
  Endpoint e;
  e.text = s;
  if (s.starts_with("unix:")) {
    e.kind = Endpoint::Kind::kUnix;
    e.path = s.substr(5);
    if (e.path.empty()) return Error::invalid(cat(flag, ": unix: needs a socket path"));
    return e;
  }
  if (!s.starts_with("tcp:")) return Error::invalid(cat(flag, ": '", s, "' is neither tcp:ADDR:PORT nor unix:PATH"));
  std::string rest = s.substr(4);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return Error::invalid(cat(flag, ": '", s, "' needs tcp:ADDR:PORT"));
  e.host = rest.substr(0, colon);
  if (e.host.size() >= 2 && e.host.front() == '[' && e.host.back() == ']') e.host = e.host.substr(1, e.host.size() - 2);
  auto port = parse_u64(rest.substr(colon + 1));
  if (!port || *port == 0 || *port > 65535) return Error::invalid(cat(flag, ": port '", rest.substr(colon + 1), "' is not 1 to 65535"));
  e.port = static_cast<uint16_t>(*port);
  TRYC(address(e), flag);
  return e;
}

Result<UniqueFd> listen_endpoint(const Endpoint& e) {
  Addr a = TRY(address(e));
  int fd = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::from_errno("socket");
  UniqueFd sock(fd);
  if (e.kind == Endpoint::Kind::kUnix) {
    struct stat st {};
    if (::lstat(e.path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode)) return Error(EEXIST, cat(e.path, " exists and is not a socket"));
      int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      bool alive = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&a.ss), a.len) == 0;
      if (probe >= 0) ::close(probe);
      if (alive) return Error(EADDRINUSE, cat(e.path, ": another process listens on this socket"));
      ::unlink(e.path.c_str());
    }
  } else {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  // What TCP has delivered here but the receiver has not processed yet is
  // acknowledged, so the sender's SIOCOUTQ does not see it: a bounded receive
  // buffer bounds it (kReceiveBuffer). Accepted connections inherit it (it
  // must be set before the handshake).
  if (a.family != AF_UNIX) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kReceiveBuffer, sizeof kReceiveBuffer);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) < 0) return Error::from_errno(cat("bind ", e.text));
  if (::listen(fd, 4) < 0) return Error::from_errno(cat("listen ", e.text));
  return sock;
}

Result<UniqueFd> accept_one(int listen_fd, int timeout_ms, int cancel_fd) {
  pollfd p[2] = {{listen_fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
  for (;;) {
    int r = ::poll(p, cancel_fd >= 0 ? 2 : 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error::from_errno("poll");
    if (r == 0) return Error(ETIMEDOUT, "no sender connected in time");
    if (cancel_fd >= 0 && p[1].revents) return Error(ECANCELED, "cancelled");
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0 && (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)) continue;
    if (fd < 0) return Error::from_errno("accept");
    // READY and RUNNING are small frames the sender waits for: never held
    // back by Nagle (fails harmlessly on a unix socket).
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return UniqueFd(fd);
  }
}

Result<UniqueFd> connect_endpoint(const Endpoint& e, int timeout_ms) {
  Addr a = TRY(address(e));
  int fd = ::socket(a.family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error::from_errno("socket");
  UniqueFd sock(fd);
  if (a.family == AF_UNIX && ::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kSocketBuffer, sizeof kSocketBuffer) < 0)
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSocketBuffer, sizeof kSocketBuffer);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a.ss), a.len) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) return Error::from_errno(cat("connect ", e.text));
    TRY(wait_fd(fd, POLLOUT, timeout_ms, cat("connect ", e.text).c_str()));
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) return Error::from_errno(err, cat("connect ", e.text));
  }
  if (a.family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return sock;
}

Status Connection::send_raw(std::span<const uint8_t> bytes, int pass_fd) {
  size_t done = 0;
  bool fd_sent = pass_fd < 0;
  while (done < bytes.size()) {
    iovec iov{const_cast<uint8_t*>(bytes.data() + done), bytes.size() - done};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (!fd_sent) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(fd_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      TRY(wait_fd(fd_.get(), POLLOUT, timeout_ms_, "send to the migration peer"));
      continue;
    }
    if (n < 0) return Error::from_errno("send to the migration peer");
    fd_sent = true;
    done += static_cast<size_t>(n);
    sent_ += static_cast<uint64_t>(n);
  }
  return ok();
}

uint64_t Connection::in_flight_bound() const {
  int sndbuf = 0;
  socklen_t len = sizeof sndbuf;
  if (::getsockopt(fd_.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) < 0 || sndbuf <= 0) sndbuf = 2 * kSocketBuffer;
  return 2 * static_cast<uint64_t>(sndbuf);
}

uint64_t Connection::queued() const {
  int n = 0;
  if (::ioctl(fd_.get(), SIOCOUTQ, &n) < 0 || n < 0) return in_flight_bound();
  return static_cast<uint64_t>(n);
}

bool Connection::drain(int max_ms) const {
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
  while (queued() > 0) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

Status Connection::send(FrameType type, std::span<const uint8_t> payload, int pass_fd) {
  return send_raw(encode_frame(type, payload), pass_fd);
}

Status Connection::read_exact(std::span<uint8_t> out, int timeout_ms, UniqueFd* fd_out) {
  return read_exact2(out, {}, timeout_ms, fd_out);
}

Status Connection::read_exact2(std::span<uint8_t> a, std::span<uint8_t> b, int timeout_ms, UniqueFd* fd_out) {
  size_t done = 0, total = a.size() + b.size();
  while (done < total) {
    iovec iov[2];
    int parts = 0;
    if (done < a.size()) iov[parts++] = {a.data() + done, a.size() - done};
    size_t in_b = done > a.size() ? done - a.size() : 0;
    if (in_b < b.size()) iov[parts++] = {b.data() + in_b, b.size() - in_b};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(parts);
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd_.get(), &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      TRY(wait_fd(fd_.get(), POLLIN, timeout_ms, "read from the migration peer"));
      continue;
    }
    if (n < 0) return Error::from_errno("read from the migration peer");
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (fd_out && !*fd_out) fd_out->reset(fd);
        else ::close(fd);  // more than one: not ours to keep
      }
    }
    if (n == 0) return Error(ECONNRESET, "the migration peer closed the connection");
    done += static_cast<size_t>(n);
  }
  return ok();
}

Status Connection::receive_into(Frame& f, int timeout_ms) {
  f.fd.reset();
  uint8_t hdr[kFrameHeaderSize];
  TRY(read_exact(hdr, timeout_ms, &f.fd));
  f.header = TRY(decode_frame_header(hdr));
  if (f.payload.size() < f.header.length) f.payload.resize(f.header.length);
  std::span<uint8_t> body(f.payload.data(), f.header.length);
  uint8_t crc_bytes[4];
  TRY(read_exact2(body, crc_bytes, timeout_ms, &f.fd));  // one read for both where they are there
  uint32_t crc;
  std::memcpy(&crc, crc_bytes, 4);
  TRY(check_frame_crc(hdr, body, crc));
  return ok();
}

Result<Frame> Connection::receive(int timeout_ms) {
  Frame f;
  TRY(receive_into(f, timeout_ms));
  f.payload.resize(f.header.length);
  return f;
}

Result<bool> Connection::readable(int timeout_ms) {
  pollfd p{fd_.get(), POLLIN, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error::from_errno("poll the migration peer");
    return r > 0;
  }
}

}  // namespace vessel::vmm::migration
