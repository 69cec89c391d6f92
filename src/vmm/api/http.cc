#include "vmm/api/http.h"

#include <nlohmann/json.hpp>

#include "common/strings.h"

namespace vessel::vmm::api {

namespace {
std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

bool is_token_char(char c) {
  return isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

const char* status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

HttpResponse fault(int status, std::string_view message) {
  HttpResponse r;
  r.status = status;
  r.body = nlohmann::json{{"fault_message", std::string(message)}}.dump(-1, ' ', false,
                                                                        nlohmann::json::error_handler_t::replace);
  return r;
}

std::string HttpResponse::serialize(bool keep_alive) const {
  std::string out = cat("HTTP/1.1 ", status, " ", status_text(status), "\r\nServer: vessel\r\n");
  for (const auto& [k, v] : headers) out += cat(k, ": ", v, "\r\n");
  if (!body.empty()) out += "Content-Type: application/json\r\n";
  out += cat("Content-Length: ", body.size(), "\r\n");
  if (!keep_alive) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

RequestParser::State RequestParser::fail(int status, std::string message) {
  error_status_ = status;
  error_message_ = std::move(message);
  return state_ = State::kError;
}

RequestParser::State RequestParser::feed(std::string_view data) {
  if (state_ == State::kError) return state_;
  buf_.append(data);
  return advance();
}

RequestParser::State RequestParser::advance() {
  if (state_ == State::kError || state_ == State::kDone) return state_;
  if (!headers_done_) {
    // Leading empty lines between requests are allowed (RFC 9112 2.2).
    size_t skip = 0;
    while (skip + 1 < buf_.size() && buf_[skip] == '\r' && buf_[skip + 1] == '\n') skip += 2;
    if (skip) buf_.erase(0, skip);
    size_t end = buf_.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (buf_.size() > kMaxHeaderBytes) return fail(431, cat("request head larger than ", kMaxHeaderBytes, " bytes"));
      return state_ = State::kNeedMore;
    }
    if (end + 4 > kMaxHeaderBytes) return fail(431, cat("request head larger than ", kMaxHeaderBytes, " bytes"));
    if (parse_head(end) == State::kError) return state_;
    buf_.erase(0, end + 4);
    headers_done_ = true;
    if (expect_continue_ && content_length_ > buf_.size()) {
      expect_continue_ = false;
      return state_ = State::kContinue;
    }
  }
  if (buf_.size() < content_length_) return state_ = State::kNeedMore;
  req_.body = buf_.substr(0, content_length_);
  buf_.erase(0, content_length_);
  return state_ = State::kDone;
}

RequestParser::State RequestParser::parse_head(size_t head_len) {
  std::string_view head(buf_.data(), head_len);
  size_t eol = head.find("\r\n");
  std::string_view line = head.substr(0, eol);
  // METHOD SP request-target SP HTTP-version
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(400, "malformed request line");
  std::string_view method = line.substr(0, sp1), target = line.substr(sp1 + 1, sp2 - sp1 - 1),
                   version = line.substr(sp2 + 1);
  if (method.empty() || method.size() > 16) return fail(400, "malformed request method");
  for (char c : method)
    if (!is_token_char(c)) return fail(400, "malformed request method");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (starts_with(version, "HTTP/")) return fail(505, cat("HTTP version ", version, " is not supported"));
    return fail(400, "malformed request line");
  }
  // Absolute form (http://host/path): keep the path.
  if (starts_with(target, "http://") || starts_with(target, "https://")) {
    size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target.empty() || target[0] != '/') return fail(400, "request target must be a path");
  if (target.size() > 1024) return fail(414, "request target longer than 1024 bytes");
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return fail(400, "request target contains a control character");
  req_ = HttpRequest();
  req_.method = std::string(method);
  size_t q = target.find('?');
  req_.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req_.query = std::string(target.substr(q + 1));
  req_.keep_alive = version == "HTTP/1.1";

  bool have_length = false;
  content_length_ = 0;
  expect_continue_ = false;
  size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t e = head.find("\r\n", pos);
    if (e == std::string_view::npos) e = head.size();
    std::string_view h = head.substr(pos, e - pos);
    pos = e + 2;
    size_t colon = h.find(':');
    if (colon == 0 || colon == std::string_view::npos) return fail(400, "malformed header line");
    for (size_t i = 0; i < colon; ++i)
      if (!is_token_char(h[i])) return fail(400, "malformed header name");
    if (req_.headers.size() >= kMaxHeaders) return fail(431, cat("more than ", kMaxHeaders, " headers"));
    std::string name = lower(h.substr(0, colon));
    std::string value(trim(h.substr(colon + 1)));
    for (char c : value)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f)
        return fail(400, cat("header ", name, " contains a control character"));
    if (name == "content-length") {
      auto n = parse_u64(value);
      if (!n) return fail(400, "Content-Length is not a number");
      if (have_length && *n != content_length_) return fail(400, "conflicting Content-Length headers");
      if (*n > kMaxBodyBytes) return fail(413, cat("request body larger than ", kMaxBodyBytes, " bytes"));
      have_length = true;
      content_length_ = static_cast<size_t>(*n);
    } else if (name == "transfer-encoding") {
      return fail(411, "Transfer-Encoding is not supported: send a Content-Length");
    } else if (name == "connection") {
      std::string v = lower(value);
      if (v.find("close") != std::string::npos) req_.keep_alive = false;
      if (v.find("keep-alive") != std::string::npos) req_.keep_alive = true;
    } else if (name == "expect") {
      if (lower(value) != "100-continue") return fail(400, cat("Expect: ", value, " is not supported"));
      expect_continue_ = true;
    }
    req_.headers.emplace_back(std::move(name), std::move(value));
  }
  return state_ = State::kNeedMore;
}

HttpRequest RequestParser::take() {
  HttpRequest r = std::move(req_);
  req_ = HttpRequest();
  headers_done_ = false;
  expect_continue_ = false;
  content_length_ = 0;
  state_ = State::kNeedMore;
  return r;
}

long parse_response(std::string_view all, HttpResponse& out) {
  size_t skipped = 0;
  for (;;) {
    std::string_view data = all.substr(skipped);
    size_t end = data.find("\r\n\r\n");
    if (end == std::string_view::npos) return data.size() > kMaxHeaderBytes ? -1 : 0;
    std::string_view head = data.substr(0, end);
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    if (!starts_with(line, "HTTP/1.") || line.size() < 12) return -1;
    auto code = parse_u64(line.substr(9, 3));
    if (!code) return -1;
    out = HttpResponse();
    out.status = static_cast<int>(*code);
    size_t length = 0;
    size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
    while (pos < head.size()) {
      size_t e = head.find("\r\n", pos);
      if (e == std::string_view::npos) e = head.size();
      std::string_view h = head.substr(pos, e - pos);
      pos = e + 2;
      size_t colon = h.find(':');
      if (colon == std::string_view::npos) return -1;
      std::string name = lower(h.substr(0, colon));
      std::string value(trim(h.substr(colon + 1)));
      if (name == "content-length") {
        auto n = parse_u64(value);
        if (!n || *n > kMaxResponseBytes) return -1;
        length = static_cast<size_t>(*n);
      }
      out.headers.emplace_back(std::move(name), std::move(value));
    }
    if (out.status == 100) {  // interim: skip it
      skipped += end + 4;
      continue;
    }
    if (data.size() < end + 4 + length) return 0;
    out.body = std::string(data.substr(end + 4, length));
    return static_cast<long>(skipped + end + 4 + length);
  }
}

}  // namespace vessel::vmm::api
