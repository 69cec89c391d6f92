#include "vmm/api/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "common/log.h"
#include "common/strings.h"

namespace vessel::vmm::api {

int64_t monotonic_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

namespace {
Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path)
    return Error::invalid(cat("socket path '", path, "' must be 1 to ", sizeof a.sun_path - 1, " bytes"));
  std::copy(path.begin(), path.end(), a.sun_path);
  return a;
}

// Whether something listens on the socket at `path`.
bool socket_alive(const sockaddr_un& a) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool alive = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return alive;
}
}  // namespace

Result<UniqueFd> listen_unix(const std::string& path) {
  sockaddr_un a = TRY(unix_address(path));
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Error::from_errno("socket");
  UniqueFd sock(fd);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error(EEXIST, cat(path, " exists and is not a socket"));
    if (socket_alive(a)) return Error(EADDRINUSE, cat(path, ": another process listens on this socket"));
    ::unlink(path.c_str());
  }
  mode_t old = ::umask(0177);
  int r = ::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (r < 0) return Error::from_errno(cat("bind ", path));
  if (::listen(fd, 128) < 0) {
    auto e = Error::from_errno(cat("listen ", path));
    ::unlink(path.c_str());
    return e;
  }
  return sock;
}

Result<std::unique_ptr<ApiServer>> ApiServer::listen(const std::string& path, const Router& router) {
  std::unique_ptr<ApiServer> s(new ApiServer(router));
  s->listen_fd_ = TRY(listen_unix(path));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    s->dev_ = st.st_dev;
    s->ino_ = st.st_ino;
  }
  s->path_ = path;
  return s;
}

ApiServer::~ApiServer() {
  // Unlink the socket only if it is still the one we bound.
  struct stat st {};
  if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    ::unlink(path_.c_str());
}

void ApiServer::collect(std::vector<pollfd>& fds) const {
  fds.push_back({listen_fd_.get(), POLLIN, 0});
  for (const auto& c : conns_) fds.push_back({c.fd.get(), static_cast<short>(c.out.empty() ? POLLIN : POLLOUT), 0});
}

int ApiServer::timeout_ms() const {
  if (conns_.empty()) return -1;
  int64_t first = INT64_MAX;
  for (const auto& c : conns_) first = std::min(first, c.deadline_ms);
  return static_cast<int>(std::clamp<int64_t>(first - monotonic_ms(), 0, kIdleTimeoutMs));
}

void ApiServer::accept_all() {
  for (;;) {
    int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno == EMFILE || errno == ENFILE) log::warn("vmm-api", "accept: out of file descriptors");
      return;  // EAGAIN, or a transient error: the next poll retries
    }
    UniqueFd conn(fd);
    if (conns_.size() >= kMaxConnections) {
      std::string busy = fault(503, cat("too many API connections (", kMaxConnections, ")")).serialize(false);
      (void)!::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      continue;  // closed by UniqueFd
    }
    conns_.push_back(Conn{std::move(conn), {}, {}, false, monotonic_ms() + kIdleTimeoutMs});
  }
}

bool ApiServer::flush(Conn& c) {
  while (!c.out.empty()) {
    ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.out.erase(0, static_cast<size_t>(n));
  }
  return !c.close_after_write;
}

void ApiServer::serve(Conn& c) {
  // Requests already buffered (pipelined) are served one after the other.
  for (;;) {
    auto st = c.parser.advance();
    if (st == RequestParser::State::kContinue) {
      c.out += "HTTP/1.1 100 Continue\r\n\r\n";
      continue;
    }
    if (st == RequestParser::State::kError) {
      c.out += fault(c.parser.error_status(), c.parser.error_message()).serialize(false);
      c.close_after_write = true;
      return;
    }
    if (st != RequestParser::State::kDone) return;
    HttpRequest req = c.parser.take();
    HttpResponse resp = router_.dispatch(req);
    log::debug("vmm-api", cat(req.method, " ", req.path, " -> ", resp.status));
    c.out += resp.serialize(req.keep_alive);
    c.deadline_ms = monotonic_ms() + kIdleTimeoutMs;
    if (!req.keep_alive) {
      c.close_after_write = true;
      return;
    }
  }
}

bool ApiServer::on_readable(Conn& c) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    if (n == 0) return false;  // the client closed (maybe mid-request): drop it
    bool was_idle = !c.parser.mid_request();
    c.parser.feed(std::string_view(buf, static_cast<size_t>(n)));
    if (was_idle) c.deadline_ms = monotonic_ms() + kRequestTimeoutMs;
    serve(c);
    if (!c.out.empty()) break;  // answer first; read more afterwards
  }
  return flush(c);
}

void ApiServer::handle(const std::vector<pollfd>& fds) {
  for (const auto& p : fds) {
    if (!p.revents) continue;
    if (p.fd == listen_fd_.get()) {
      accept_all();
      continue;
    }
    auto it = std::find_if(conns_.begin(), conns_.end(), [&](const Conn& c) { return c.fd.get() == p.fd; });
    if (it == conns_.end()) continue;
    bool keep = true;
    if (p.revents & POLLOUT) {
      keep = flush(*it);
      if (keep && it->out.empty()) {
        serve(*it);  // pipelined requests waiting behind the response
        keep = flush(*it);
      }
    } else if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      keep = on_readable(*it);
    }
    if (!keep) conns_.erase(it);
  }
  int64_t now = monotonic_ms();
  for (auto it = conns_.begin(); it != conns_.end();) {
    if (it->deadline_ms > now) {
      ++it;
      continue;
    }
    if (it->parser.mid_request() && it->out.empty()) {
      std::string late = fault(408, "request not complete in time").serialize(false);
      (void)!::send(it->fd.get(), late.data(), late.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    it = conns_.erase(it);
  }
}

}  // namespace vessel::vmm::api
