// HTTP/1.1 messages for the VMM API: an incremental request parser with
// hard limits, and response serialisation. Pure code (no sockets), fuzzed by
// tests/fuzz/vm_api_fuzz.cc.
//
// Why not cpp-httplib: Debian ships it as libcpp-httplib.so built with
// OpenSSL, zlib and brotli; linking it into `vessel` loads libssl and
// libcrypto at every start (measured: +45 ms per exec on the test host, see
// bench/vm_api_results.md), which both container start and the VMM's own
// start budget (< 1 ms for the API) cannot afford. The API needs a small
// subset: Content-Length bodies, keep-alive, Expect: 100-continue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vessel::vmm::api {

// Limits of one request.
inline constexpr size_t kMaxHeaderBytes = 8 * 1024;
inline constexpr size_t kMaxBodyBytes = 64 * 1024;
inline constexpr size_t kMaxHeaders = 64;
// Largest response body a client accepts.
inline constexpr size_t kMaxResponseBytes = 1 << 20;

struct HttpRequest {
  std::string method;
  std::string path;   // without the query string
  std::string query;  // after '?', may be empty
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;
  // The value of header `name` (lower case), or nullptr.
  const std::string* header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string body;  // JSON, or empty
  std::vector<std::pair<std::string, std::string>> headers;
  // The serialised response (status line, Content-Length, body).
  std::string serialize(bool keep_alive) const;
};

// A JSON error response {"fault_message": message}.
HttpResponse fault(int status, std::string_view message);
// "Bad Request" for 400 etc.
const char* status_text(int status);

// Feeds bytes of a connection; yields one request at a time.
class RequestParser {
 public:
  enum class State {
    kNeedMore,  // give more bytes
    kContinue,  // headers read, the client waits for "100 Continue"; then kNeedMore
    kDone,      // request() is complete; take() it, then parse the rest
    kError,     // error_status()/error_message() say why; close after replying
  };
  // Appends `data` and advances; returns the new state.
  State feed(std::string_view data);
  // Parses what is buffered already (after take()).
  State advance();
  State state() const { return state_; }
  // The finished request; resets the parser for the next one (pipelined bytes stay buffered).
  HttpRequest take();
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }
  // Bytes buffered and not yet consumed.
  size_t buffered() const { return buf_.size(); }
  // True once any byte of a request has arrived.
  bool mid_request() const { return !buf_.empty() || headers_done_; }

 private:
  State fail(int status, std::string message);
  State parse_head(size_t head_len);

  std::string buf_;
  HttpRequest req_;
  bool headers_done_ = false;
  bool expect_continue_ = false;
  size_t content_length_ = 0;
  State state_ = State::kNeedMore;
  int error_status_ = 0;
  std::string error_message_;
};

// Client side: parses one response from `data` (complete or not).
// Returns the number of bytes consumed, 0 when incomplete, or -1 when malformed.
long parse_response(std::string_view data, HttpResponse& out);

}  // namespace vessel::vmm::api
