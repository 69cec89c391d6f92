#include "container/sync.h"

#include <sys/socket.h>

#include <cstring>
#include <vector>

#include "common/strings.h"

namespace vessel::container {

Result<std::pair<SyncSocket, SyncSocket>> SyncSocket::pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Error::from_errno("socketpair");
  return std::make_pair(SyncSocket(UniqueFd(sv[0])), SyncSocket(UniqueFd(sv[1])));
}

namespace {

Status send_message(int sock, SyncMsg type, const std::string& payload, int32_t code, int fd) {
  std::vector<char> buf(8 + payload.size());
  uint32_t t = static_cast<uint32_t>(type);
  std::memcpy(buf.data(), &t, 4);
  std::memcpy(buf.data() + 4, &code, 4);
  std::memcpy(buf.data() + 8, payload.data(), payload.size());
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  char cbuf[CMSG_SPACE(sizeof(int))]{};
  if (fd >= 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::from_errno("sync send");
  return ok();
}

}  // namespace

Status SyncSocket::send(SyncMsg type, const std::string& payload, int32_t code) {
  return send_message(fd_.get(), type, payload, code, -1);
}

Status SyncSocket::send_fd(SyncMsg type, int fd, const std::string& payload) {
  return send_message(fd_.get(), type, payload, 0, fd);
}

Result<SyncMessage> SyncSocket::recv() {
  std::vector<char> buf(1 << 20);
  iovec iov{buf.data(), buf.size()};
  char cbuf[CMSG_SPACE(sizeof(int))]{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = ::recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Error::from_errno("sync recv");
  if (n == 0) return Error(EPIPE, "container init exited during setup");
  if (n < 8) return Error(EPROTO, "sync recv: short message");
  SyncMessage m;
  if (cmsghdr* c = CMSG_FIRSTHDR(&msg); c && c->cmsg_type == SCM_RIGHTS) {
    int fd;
    std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
    m.fd.reset(fd);
  }
  uint32_t t;
  std::memcpy(&t, buf.data(), 4);
  std::memcpy(&m.code, buf.data() + 4, 4);
  m.type = static_cast<SyncMsg>(t);
  m.payload.assign(buf.data() + 8, static_cast<size_t>(n) - 8);
  return m;
}

Result<SyncMessage> SyncSocket::expect(SyncMsg type) {
  auto m = TRY(recv());
  if (m.type == SyncMsg::kError) return Error(m.code ? m.code : EIO, m.payload);
  if (m.type != type)
    return Error(EPROTO, cat("sync: expected message ", static_cast<uint32_t>(type), ", got ", static_cast<uint32_t>(m.type)));
  return m;
}

}  // namespace vessel::container
