#include "vmm/api/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "common/unique_fd.h"
#include "vmm/api/server.h"

namespace vessel::vmm::api {

Result<HttpResponse> call(const std::string& socket_path, const std::string& method, const std::string& path,
                          const std::string& body, int timeout_ms) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof a.sun_path)
    return Error::invalid(cat("API socket path '", socket_path, "' is too long"));
  std::copy(socket_path.begin(), socket_path.end(), a.sun_path);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error::from_errno("socket");
  UniqueFd sock(fd);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) < 0)
    return Error::from_errno(cat("connect to ", socket_path));
  std::string req = cat(method, " ", path, " HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n");
  if (!body.empty()) req += "Content-Type: application/json\r\n";
  req += cat("Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
  int64_t deadline = monotonic_ms() + timeout_ms;
  auto wait = [&](short events) -> Status {
    for (;;) {
      int64_t left = deadline - monotonic_ms();
      if (left <= 0) return Error(ETIMEDOUT, cat(method, " ", path, ": no answer from ", socket_path, " in time"));
      pollfd p{fd, events, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return ok();
      if (r < 0 && errno != EINTR) return Error::from_errno("poll");
    }
  };
  std::string_view out = req;
  while (!out.empty()) {
    TRY(wait(POLLOUT));
    ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error::from_errno(cat("send to ", socket_path));
    }
    out.remove_prefix(static_cast<size_t>(n));
  }
  std::string in;
  HttpResponse resp;
  for (;;) {
    TRY(wait(POLLIN));
    char buf[8192];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Error::from_errno(cat("receive from ", socket_path));
    }
    if (n == 0) return Error(EPROTO, cat(method, " ", path, ": ", socket_path, " closed the connection early"));
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > kMaxResponseBytes + kMaxHeaderBytes) return Error(EPROTO, "API response too large");
    long used = parse_response(in, resp);
    if (used < 0) return Error(EPROTO, cat(method, " ", path, ": malformed response from ", socket_path));
    if (used > 0) return resp;
  }
}

Result<HttpResponse> call_ok(const std::string& socket_path, const std::string& method, const std::string& path,
                             const std::string& body, int timeout_ms) {
  HttpResponse r = TRY(call(socket_path, method, path, body, timeout_ms));
  if (r.status < 300) return r;
  std::string msg = r.body;
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("fault_message") && j["fault_message"].is_string())
    msg = j["fault_message"].get<std::string>();
  return Error(r.status == 404 ? ENOENT : EINVAL, msg);
}

}  // namespace vessel::vmm::api
