// ApiServer: HTTP/1.1 on a unix socket, driven by the VMM's control loop
// (no thread of its own): the loop polls the fds from collect() and calls
// handle(). Requests go to a Router.
//
// Bounds: kMaxConnections open at once (more are accepted, answered 503
// and closed), a request must arrive within kRequestTimeoutMs of its first
// byte, an idle keep-alive connection is closed after kIdleTimeoutMs, body
// and head sizes as in http.h. A client that disconnects mid-request costs
// nothing: its connection is dropped.
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"
#include "vmm/api/http.h"
#include "vmm/api/router.h"

namespace vessel::vmm::api {

inline constexpr size_t kMaxConnections = 64;
inline constexpr int kRequestTimeoutMs = 5000;
inline constexpr int kIdleTimeoutMs = 30000;

class ApiServer {
 public:
  // Binds and listens on `path` (mode 0600; an existing socket file is an
  // error unless nobody listens on it, then it is replaced).
  static Result<std::unique_ptr<ApiServer>> listen(const std::string& path, const Router& router);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Appends the fds to poll (listening socket and connections).
  void collect(std::vector<pollfd>& fds) const;
  // Serves what `fds` (as filled by collect() and polled) reports, then
  // closes connections past their deadline.
  void handle(const std::vector<pollfd>& fds);
  // Milliseconds until the next deadline (-1: none) for the poll timeout.
  int timeout_ms() const;
  const std::string& path() const { return path_; }
  size_t connections() const { return conns_.size(); }

 private:
  struct Conn {
    UniqueFd fd;
    RequestParser parser;
    std::string out;  // response bytes not yet written
    bool close_after_write = false;
    int64_t deadline_ms = 0;
  };
  ApiServer(const Router& router) : router_(router) {}
  void accept_all();
  // Reads and serves; false when the connection must close now.
  bool on_readable(Conn& c);
  bool flush(Conn& c);
  void serve(Conn& c);

  const Router& router_;
  UniqueFd listen_fd_;
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  std::list<Conn> conns_;
};

// A listening unix stream socket at `path` (mode 0600, non-blocking,
// close-on-exec). A stale socket file nobody listens on is replaced; any
// other existing file is an error.
Result<UniqueFd> listen_unix(const std::string& path);

// Milliseconds of CLOCK_MONOTONIC.
int64_t monotonic_ms();

}  // namespace vessel::vmm::api
