#include "vmm/virtio/vsock/vsock.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "common/log.h"
#include "common/strings.h"

namespace vessel::vmm::virtio {

using namespace vsock;

namespace {
constexpr unsigned kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;
// Control packets waiting for receive buffers; more are dropped (a guest
// flooding requests without reading cannot grow the VMM).
constexpr size_t kMaxControl = 4096;
// A CONNECT line: "CONNECT 4294967295\n" fits.
constexpr size_t kMaxConnectLine = 32;
// Longest "<uds_path>_<port>".
constexpr size_t kPortSuffix = 11;
// Send a credit update once this much more room was made for the guest.
constexpr uint32_t kCreditUpdateStep = VsockDevice::kBufAlloc / 4;

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path) return Error::invalid(cat("unix socket path '", path, "' is empty or too long"));
  std::memcpy(a.sun_path, path.data(), path.size());
  return a;
}

Result<UniqueFd> unix_socket() {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::from_errno("socket(AF_UNIX)");
  return UniqueFd(fd);
}

// Whether something accepts connections on `a` (a live socket, not a stale file).
bool someone_listens(const sockaddr_un& a) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0 || errno == EAGAIN;
  ::close(fd);
  return live;
}

void write_all_nonblocking(int fd, const std::string& s) {
  // A few bytes to a fresh unix socket: fits its buffer.
  (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}
}  // namespace

Result<std::unique_ptr<VsockDevice>> VsockDevice::create(const VsockOptions& o) {
  if (o.guest_cid < kMinGuestCid || o.guest_cid > kMaxGuestCid)
    return Error::invalid(cat("vsock guest CID must be between ", kMinGuestCid, " and ", kMaxGuestCid, ", not ", o.guest_cid));
  if (o.uds_path.empty()) return Error::invalid("vsock: uds_path is empty");
  if (o.uds_path.size() + kPortSuffix >= sizeof(sockaddr_un::sun_path))
    return Error::invalid(cat("vsock: uds_path '", o.uds_path, "' is too long for a unix socket (with its _PORT suffix)"));
  std::unique_ptr<VsockDevice> d(new VsockDevice());
  d->cid_ = o.guest_cid;
  sockaddr_un a = TRY(unix_address(o.uds_path));
  d->listener_ = TRY(unix_socket());
  if (::bind(d->listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    if (errno != EADDRINUSE) return Error::from_errno(cat("vsock: bind ", o.uds_path));
    struct stat st {};
    if (::lstat(o.uds_path.c_str(), &st) < 0 || !S_ISSOCK(st.st_mode))
      return Error::invalid(cat("vsock: uds_path ", o.uds_path, " exists and is not a socket"));
    if (someone_listens(a)) return Error::invalid(cat("vsock: uds_path ", o.uds_path, " is in use by another process"));
    ::unlink(o.uds_path.c_str());  // stale: its owner is gone
    if (::bind(d->listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0)
      return Error::from_errno(cat("vsock: bind ", o.uds_path));
  }
  d->uds_path_ = o.uds_path;
  d->owns_path_ = true;  // from here on the destructor removes it
  if (::listen(d->listener_.get(), 128) < 0) return Error::from_errno(cat("vsock: listen ", o.uds_path));
  TRY(d->watch_listener());
  return d;
}

Result<std::unique_ptr<VsockDevice>> VsockDevice::adopt(const VsockOptions& o, UniqueFd listener) {
  if (o.guest_cid < kMinGuestCid || o.guest_cid > kMaxGuestCid)
    return Error::invalid(cat("vsock guest CID must be between ", kMinGuestCid, " and ", kMaxGuestCid, ", not ", o.guest_cid));
  auto opt = [&](int name) {
    int v = -1;
    socklen_t len = sizeof v;
    return ::getsockopt(listener.get(), SOL_SOCKET, name, &v, &len) == 0 ? v : -1;
  };
  if (opt(SO_DOMAIN) != AF_UNIX || opt(SO_TYPE) != SOCK_STREAM || opt(SO_ACCEPTCONN) != 1)
    return Error::invalid(cat("vsock: the socket handed over for ", o.uds_path, " is not a listening unix stream socket"));
  sockaddr_un a{};
  socklen_t len = sizeof a;
  if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) < 0)
    return Error::from_errno("vsock: getsockname of the socket handed over");
  size_t n = len > offsetof(sockaddr_un, sun_path) ? ::strnlen(a.sun_path, len - offsetof(sockaddr_un, sun_path)) : 0;
  std::string bound(a.sun_path, n);
  if (bound != o.uds_path)
    return Error::invalid(cat("vsock: the socket handed over is bound to '", bound, "', not to uds_path ", o.uds_path));
  int fl = ::fcntl(listener.get(), F_GETFL);
  if (fl < 0 || ::fcntl(listener.get(), F_SETFL, fl | O_NONBLOCK) < 0)
    return Error::from_errno("vsock: make the socket handed over non-blocking");
  std::unique_ptr<VsockDevice> d(new VsockDevice());
  d->cid_ = o.guest_cid;
  d->listener_ = std::move(listener);
  d->uds_path_ = o.uds_path;
  TRY(d->watch_listener());
  return d;
}

Status VsockDevice::watch_listener() {
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return Error::from_errno("epoll_create1");
  epoll_.reset(ep);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener_.get();
  if (::epoll_ctl(ep, EPOLL_CTL_ADD, listener_.get(), &ev) < 0) return Error::from_errno("epoll_ctl");
  return ok();
}

VsockDevice::~VsockDevice() {
  if (owns_path_) ::unlink(uds_path_.c_str());
}

void VsockDevice::read_config(uint64_t offset, std::span<uint8_t> data) const {
  uint8_t cfg[8];
  std::memcpy(cfg, &cid_, 8);  // le64 guest_cid
  for (size_t i = 0; i < data.size(); ++i) data[i] = offset + i < sizeof cfg ? cfg[offset + i] : 0;
}

Status VsockDevice::activate(DeviceHost& host) {
  host_ = &host;
  return ok();
}

void VsockDevice::reset() {
  counters_.connections_closed += conns_.size();
  conns_.clear();
  by_fd_.clear();
  pending_host_.clear();
  control_.clear();
  host_ = nullptr;
}

Status VsockDevice::restore(const VsockState& s) {
  if (s.guest_cid < kMinGuestCid || s.guest_cid > kMaxGuestCid) return Error::invalid(cat("vsock: saved guest CID ", s.guest_cid, " is invalid"));
  cid_ = s.guest_cid;
  return ok();
}

Status VsockDevice::send_transport_reset(DeviceHost& host) {
  Queue& q = host.queue(kEventQueue);
  if (!q.active()) return ok();
  auto chain = TRY(q.pop(host.memory()));
  if (!chain) return Error::invalid("vsock: no event buffer for the transport reset");
  uint32_t id = kEventTransportReset;
  size_t n = copy_to_chain(*chain, 0, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&id), 4));
  TRY(q.add_used(chain->head, static_cast<uint32_t>(n)));
  host.notify_used(kEventQueue);
  return ok();
}

uint32_t VsockDevice::next_host_port() {
  for (;;) {
    uint32_t p = port_seq_++;
    if (port_seq_ == 0) port_seq_ = 1u << 30;
    bool used = std::any_of(conns_.begin(), conns_.end(), [p](const auto& kv) { return kv.first.first == p; });
    if (!used) return p;
  }
}

void VsockDevice::watch(Conn& c, uint32_t events) {
  if (!c.watched || c.events == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = c.sock.get();
  (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, c.sock.get(), &ev);
  c.events = events;
}

void VsockDevice::queue_control(uint16_t op, uint32_t host_port, uint32_t guest_port, uint32_t flags, const Conn* c) {
  if (control_.size() >= kMaxControl) {
    ++counters_.bad_packets;
    return;
  }
  Header h{};
  h.src_cid = kHostCid;
  h.dst_cid = cid_;
  h.src_port = host_port;
  h.dst_port = guest_port;
  h.type = kTypeStream;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = kBufAlloc;
  h.fwd_cnt = c ? c->fwd_cnt : 0;
  control_.push_back(h);
}

void VsockDevice::close_conn(const Key& k, bool send_rst) {
  auto it = conns_.find(k);
  if (it == conns_.end()) return;
  if (send_rst) queue_control(kOpRst, k.first, k.second, 0, nullptr);
  by_fd_.erase(it->second.sock.get());
  conns_.erase(it);  // closing the socket removes it from the epoll set
  ++counters_.connections_closed;
}

Status VsockDevice::process_queue(DeviceHost& host, unsigned index) {
  switch (index) {
    case kRxQueue: return process_rx(host);
    case kTxQueue: TRY(process_tx(host)); return process_rx(host);
    default: return ok();  // event buffers wait for a transport reset
  }
}

Status VsockDevice::process_tx(DeviceHost& host) {
  Queue& q = host.queue(kTxQueue);
  bool used = false;
  do {
    while (auto chain = TRY(q.pop(host.memory()))) {
      Header h;
      if (copy_from_chain(*chain, 0, std::span<uint8_t>(reinterpret_cast<uint8_t*>(&h), sizeof h)) < sizeof h)
        ++counters_.bad_packets;
      else
        handle_packet(h, *chain);
      TRY(q.add_used(chain->head, 0));
      used = true;
    }
  } while (q.enable_notification());
  if (used) host.notify_used(kTxQueue);
  return ok();
}

void VsockDevice::handle_packet(const Header& h, const DescriptorChain& chain) {
  // Addressing first: a packet that is not from our guest to the host cannot even be answered.
  if (h.src_cid != cid_ || h.dst_cid != kHostCid) {
    ++counters_.bad_packets;
    return;
  }
  Key k{h.dst_port, h.src_port};
  bool bad_len = h.len > kMaxPayload || h.len > chain.readable_bytes - sizeof(Header) || (h.op != kOpRw && h.len != 0);
  if (h.type != kTypeStream || bad_len || h.op == kOpInvalid || h.op > kOpCreditRequest) {
    ++counters_.bad_packets;
    if (h.op != kOpRst) {
      if (conns_.count(k)) close_conn(k, true);
      else queue_control(kOpRst, h.dst_port, h.src_port, 0, nullptr);
    }
    return;
  }
  if (h.op == kOpRequest) {
    if (conns_.count(k)) {
      ++counters_.bad_packets;
      close_conn(k, true);
      return;
    }
    guest_request(h);
    return;
  }
  auto it = conns_.find(k);
  if (it == conns_.end()) {
    if (h.op != kOpRst) {
      ++counters_.bad_packets;
      queue_control(kOpRst, h.dst_port, h.src_port, 0, nullptr);
    }
    return;
  }
  Conn& c = it->second;
  c.peer_buf_alloc = h.buf_alloc;
  c.peer_fwd_cnt = h.fwd_cnt;
  switch (h.op) {
    case kOpResponse:
      if (!c.host_initiated || c.established) {
        close_conn(k, true);
        return;
      }
      c.established = true;
      write_all_nonblocking(c.sock.get(), cat("OK ", c.host_port, "\n"));
      watch(c, EPOLLIN);
      return;
    case kOpRw:
      if (!c.established) {
        close_conn(k, true);
        return;
      }
      guest_data(c, chain, h.len);
      return;
    case kOpShutdown:
      if ((h.flags & kShutdownRcv) && (h.flags & kShutdownSend)) {
        close_conn(k, true);  // the guest is done both ways: RST ends it
        return;
      }
      if (h.flags & kShutdownSend) {
        c.guest_shut_send = true;
        if (c.tx_buf.empty()) ::shutdown(c.sock.get(), SHUT_WR);
      }
      return;
    case kOpRst: close_conn(k, false); return;
    case kOpCreditUpdate: return;  // the credit was taken above
    case kOpCreditRequest: queue_control(kOpCreditUpdate, c.host_port, c.guest_port, 0, &c); return;
    default: return;
  }
}

void VsockDevice::guest_request(const Header& h) {
  Key k{h.dst_port, h.src_port};
  auto refuse = [&] { queue_control(kOpRst, h.dst_port, h.src_port, 0, nullptr); };
  if (conns_.size() >= kMaxConnections) return refuse();
  auto addr = unix_address(cat(uds_path_, "_", h.dst_port));
  auto sock = unix_socket();
  if (!addr || !sock) return refuse();
  if (::connect(sock->get(), reinterpret_cast<sockaddr*>(&*addr), sizeof *addr) < 0) return refuse();
  Conn c;
  c.sock = std::move(sock).value();
  c.host_port = h.dst_port;
  c.guest_port = h.src_port;
  c.established = true;
  c.peer_buf_alloc = h.buf_alloc;
  c.peer_fwd_cnt = h.fwd_cnt;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = c.sock.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, c.sock.get(), &ev) < 0) return refuse();
  c.events = EPOLLIN;
  by_fd_[c.sock.get()] = k;
  Conn& in = conns_.emplace(k, std::move(c)).first->second;
  ++counters_.connections_opened;
  queue_control(kOpResponse, h.dst_port, h.src_port, 0, &in);
}

void VsockDevice::guest_data(Conn& c, const DescriptorChain& chain, uint32_t len) {
  Key k{c.host_port, c.guest_port};
  // Sending after its own SHUTDOWN, or beyond the credit we gave: a broken peer.
  if (c.guest_shut_send || c.tx_buf.size() + len > kBufAlloc) {
    ++counters_.bad_packets;
    close_conn(k, true);
    return;
  }
  if (len == 0) return;
  size_t at = c.tx_buf.size();
  c.tx_buf.resize(at + len);
  copy_from_chain(chain, sizeof(Header), std::span<uint8_t>(c.tx_buf.data() + at, len));
  counters_.bytes_from_guest += len;
  flush_tx(c);
}

void VsockDevice::flush_tx(Conn& c) {
  Key k{c.host_port, c.guest_port};
  while (!c.tx_buf.empty()) {
    ssize_t n = ::send(c.sock.get(), c.tx_buf.data(), c.tx_buf.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      close_conn(k, true);  // the host side is gone
      return;
    }
    c.tx_buf.erase(c.tx_buf.begin(), c.tx_buf.begin() + n);
    c.fwd_cnt += static_cast<uint32_t>(n);
  }
  watch(c, (c.events & EPOLLIN) | (c.tx_buf.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT)));
  if (c.tx_buf.empty() && c.guest_shut_send) ::shutdown(c.sock.get(), SHUT_WR);
  if (c.fwd_cnt - c.last_fwd_cnt_sent >= kCreditUpdateStep) {
    c.last_fwd_cnt_sent = c.fwd_cnt;
    queue_control(kOpCreditUpdate, c.host_port, c.guest_port, 0, &c);
  }
}

void VsockDevice::accept_host() {
  for (;;) {
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    UniqueFd sock(fd);
    if (pending_host_.size() >= kMaxPendingHost || conns_.size() >= kMaxConnections) continue;  // closed
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) continue;
    pending_host_[fd] = PendingHost{std::move(sock), {}};
  }
}

void VsockDevice::read_connect_line(int fd) {
  auto it = pending_host_.find(fd);
  PendingHost& p = it->second;
  // One byte at a time: what follows the line is the connection's data.
  for (;;) {
    char ch;
    ssize_t n = ::recv(fd, &ch, 1, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0 || p.line.size() >= kMaxConnectLine) {
      pending_host_.erase(it);
      return;
    }
    if (ch != '\n') {
      p.line.push_back(ch);
      continue;
    }
    break;
  }
  std::string line = p.line;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  uint64_t port = 0;
  bool valid = starts_with(line, "CONNECT ") && line.size() > 8 && line.size() <= 18;
  for (size_t i = 8; valid && i < line.size(); ++i) {
    if (line[i] < '0' || line[i] > '9') valid = false;
    else port = port * 10 + static_cast<uint64_t>(line[i] - '0');
  }
  if (!valid || port > 0xffffffffULL) {
    pending_host_.erase(it);
    return;
  }
  Conn c;
  c.sock = std::move(p.sock);
  pending_host_.erase(it);
  c.host_initiated = true;
  c.host_port = next_host_port();
  c.guest_port = static_cast<uint32_t>(port);
  c.events = EPOLLIN;
  watch(c, 0);  // nothing is read before the guest accepts
  Key k{c.host_port, c.guest_port};
  by_fd_[c.sock.get()] = k;
  conns_.emplace(k, std::move(c));
  ++counters_.connections_opened;
  queue_control(kOpRequest, k.first, k.second, 0, nullptr);
}

Status VsockDevice::process_event(DeviceHost& host, int) {
  epoll_event evs[64];
  // Until nothing is ready (a new socket may already hold data); every fd
  // handled below stops being ready, so this ends; the bound is a backstop.
  for (int round = 0; round < 64; ++round) {
    int n = ::epoll_wait(epoll_.get(), evs, 64, 0);
    if (n <= 0) break;
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == listener_.get()) {
        accept_host();
        continue;
      }
      if (pending_host_.count(fd)) {
        read_connect_line(fd);
        continue;
      }
      auto it = by_fd_.find(fd);
      if (it == by_fd_.end()) continue;
      const Key key = it->second;  // flush_tx()/close_conn() may erase the by_fd_ entry
      Conn& c = conns_.at(key);
      if (evs[i].events & EPOLLOUT) flush_tx(c);
      if (!conns_.count(key)) continue;
      if (!c.established && (evs[i].events & (EPOLLHUP | EPOLLERR))) {
        close_conn(key, true);  // the host client left before the guest answered
        continue;
      }
      // Readable (or hung up): read it when there is a receive buffer and credit.
      if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
        // Stays ready whatever we ask: out of the set; what is left is read, then EOF.
        (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
        c.watched = false;
        c.readable = true;
      } else if (evs[i].events & EPOLLIN) {
        c.readable = true;
        watch(c, c.events & ~static_cast<uint32_t>(EPOLLIN));
      }
    }
  }
  return process_rx(host);
}

Status VsockDevice::process_rx(DeviceHost& host) {
  Queue& q = host.queue(kRxQueue);
  if (!q.active()) return ok();
  bool used = false;
  for (;;) {
    Conn* data_conn = nullptr;
    if (control_.empty()) {
      for (auto& [k, c] : conns_)
        if (c.readable && c.established && !c.host_eof && c.peer_credit() > 0) {
          data_conn = &c;
          break;
        }
      if (!data_conn) break;
    }
    auto chain = TRY(q.pop(host.memory()));
    if (!chain) {
      // With EVENT_IDX the driver notifies only past avail_event: publish it, or its refill
      // never wakes us and what waits here (a control packet, a connection's data) hangs.
      if (q.enable_notification()) continue;
      break;  // the driver's next receive buffers wake us (queue notify)
    }
    if (chain->writable_bytes < sizeof(Header)) {
      TRY(q.add_used(chain->head, 0));  // useless buffer
      used = true;
      continue;
    }
    if (!control_.empty()) {
      Header h = control_.front();
      control_.pop_front();
      copy_to_chain(*chain, 0, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&h), sizeof h));
      TRY(q.add_used(chain->head, sizeof h));
      used = true;
      continue;
    }
    Conn& c = *data_conn;
    Key k{c.host_port, c.guest_port};
    uint64_t room = std::min<uint64_t>({chain->writable_bytes - sizeof(Header), kMaxPayload, c.peer_credit()});
    if (rx_buf_.size() < room) rx_buf_.resize(room);
    ssize_t n = room == 0 ? 0 : ::recv(c.sock.get(), rx_buf_.data(), room, MSG_DONTWAIT);
    if (room == 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) {
      q.undo_pop();
      c.readable = false;
      watch(c, c.events | EPOLLIN);
      continue;
    }
    if (n <= 0) {
      q.undo_pop();
      if (n == 0) {
        // The host will send no more (it may still read: a half-close): tell the guest.
        c.host_eof = true;
        c.readable = false;
        // Nothing more to read; still writable (a full hang-up is taken out of the set by process_event()).
        watch(c, c.tx_buf.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
        queue_control(kOpShutdown, c.host_port, c.guest_port, kShutdownSend, &c);
      } else {
        close_conn(k, true);
      }
      continue;
    }
    Header h{};
    h.src_cid = kHostCid;
    h.dst_cid = cid_;
    h.src_port = c.host_port;
    h.dst_port = c.guest_port;
    h.len = static_cast<uint32_t>(n);
    h.type = kTypeStream;
    h.op = kOpRw;
    h.buf_alloc = kBufAlloc;
    h.fwd_cnt = c.fwd_cnt;
    c.last_fwd_cnt_sent = c.fwd_cnt;
    copy_to_chain(*chain, 0, std::span<const uint8_t>(reinterpret_cast<uint8_t*>(&h), sizeof h));
    copy_to_chain(*chain, sizeof h, std::span<const uint8_t>(rx_buf_.data(), static_cast<size_t>(n)));
    TRY(q.add_used(chain->head, static_cast<uint32_t>(sizeof h + n)));
    c.rx_cnt += static_cast<uint32_t>(n);
    counters_.bytes_to_guest += static_cast<uint64_t>(n);
    used = true;
  }
  if (used) host.notify_used(kRxQueue);
  return ok();
}

}  // namespace vessel::vmm::virtio
