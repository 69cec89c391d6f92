#include "container/sync.h"

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/fs.h"
#include "common/strings.h"
#include "sys/syscalls.h"

namespace vessel::container {

Result<std::pair<SyncSocket, SyncSocket>> SyncSocket::pair() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) return Error::from_errno("socketpair");
  return std::make_pair(SyncSocket(UniqueFd(sv[0])), SyncSocket(UniqueFd(sv[1])));
}

namespace {

std::string frame(SyncMsg type, const std::string& payload, int32_t code) {
  std::string buf(8 + payload.size(), '\0');
  uint32_t t = static_cast<uint32_t>(type);
  std::memcpy(buf.data(), &t, 4);
  std::memcpy(buf.data() + 4, &code, 4);
  std::memcpy(buf.data() + 8, payload.data(), payload.size());
  return buf;
}

// A seqpacket message must fit the socket buffer (~200 KiB): larger payloads (the state
// JSON of a config with 20,000 annotations) travel in a memfd sent along, marked by this bit.
constexpr uint32_t kPayloadInFd = 0x80000000u;
constexpr size_t kMaxInline = 32 << 10;
constexpr size_t kMaxPayload = 256u << 20;

}  // namespace

Status SyncSocket::send(SyncMsg type, const std::string& payload, int32_t code) {
  if (payload.size() <= kMaxInline) return sys::send_message(fd_.get(), frame(type, payload, code)).context("sync send");
  UniqueFd mem(static_cast<int>(::syscall(SYS_memfd_create, "vessel-sync", 1u /*MFD_CLOEXEC*/)));
  if (!mem) return Error::from_errno("sync send: memfd_create");
  TRYC(write_all(mem.get(), payload), "sync send: write memfd");
  auto t = static_cast<SyncMsg>(static_cast<uint32_t>(type) | kPayloadInFd);
  return sys::send_message(fd_.get(), frame(t, "", code), mem.get()).context("sync send");
}

Status SyncSocket::send_fd(SyncMsg type, int fd, const std::string& payload) {
  return sys::send_message(fd_.get(), frame(type, payload, 0), fd).context("sync send");
}

Result<SyncMessage> SyncSocket::recv() {
  std::vector<char> buf(1 << 20);
  SyncMessage m;
  size_t n = TRYC(sys::recv_message(fd_.get(), buf.data(), buf.size(), &m.fd), "sync recv");
  if (n == 0) return Error(EPIPE, "container init exited during setup");
  if (n < 8) return Error(EPROTO, "sync recv: short message");
  uint32_t t;
  std::memcpy(&t, buf.data(), 4);
  std::memcpy(&m.code, buf.data() + 4, 4);
  m.type = static_cast<SyncMsg>(t & ~kPayloadInFd);
  m.payload.assign(buf.data() + 8, static_cast<size_t>(n) - 8);
  if (t & kPayloadInFd) {
    if (!m.fd) return Error(EPROTO, "sync recv: payload descriptor missing");
    if (::lseek(m.fd.get(), 0, SEEK_SET) < 0) return Error::from_errno("sync recv: seek payload");
    m.payload = TRYC(read_fd_bounded(m.fd.get(), kMaxPayload), "sync recv: payload");
    m.fd.reset();
  }
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
